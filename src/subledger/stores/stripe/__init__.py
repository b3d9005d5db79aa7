"""Stripe: subscriptions (with their invoices) and payment intents."""
