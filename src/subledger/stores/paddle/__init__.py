"""Paddle Billing: purchases validated by token, read from Paddle's API."""
