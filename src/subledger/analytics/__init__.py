"""Analytics: subscription metrics, export and import."""
