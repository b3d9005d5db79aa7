"""Apps and their API keys."""
