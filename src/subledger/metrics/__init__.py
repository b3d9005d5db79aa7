"""Metric rollups: what each profile's ledger adds to its app's metrics, kept with every write,
and the rules that compute metrics from them (read by ``analytics``)."""
