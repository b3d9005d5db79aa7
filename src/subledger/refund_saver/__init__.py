"""Refund Saver: answering the App Store's consumption requests with what the ledger knows, as
each profile and the app prefer."""
