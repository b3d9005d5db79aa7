"""Store integrations: what the stores report, turned into ledger entries."""
