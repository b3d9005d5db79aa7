"""The legacy API v1 (``/api/v1/sdk/``), served over the same ledger as v2."""
