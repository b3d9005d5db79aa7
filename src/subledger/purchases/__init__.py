"""The ledger: transactions, grants and revocations, and the access they derive."""
