"""The reference's Export Analytics API (``/api/v1/client-api/``): analytics for BI tools, as
JSON or CSV, with the secret key."""
