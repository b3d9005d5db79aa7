"""subledger: a self-hosted backend for in-app subscriptions."""

__version__ = "0.1.0"
