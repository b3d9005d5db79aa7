"""Paywalls, placements, audiences and A/B tests."""
