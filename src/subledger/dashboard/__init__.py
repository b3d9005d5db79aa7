"""The web dashboard: metrics, profiles, deliveries and the catalog, behind operator sign-in."""
