"""Google Play: Real-time Developer Notifications and the Play Developer API."""
