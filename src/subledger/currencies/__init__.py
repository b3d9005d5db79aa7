"""Virtual currencies: an app's coins and credits, each profile's balances and their history."""
