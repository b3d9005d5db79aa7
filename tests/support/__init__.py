"""What the tests share: the test API client, database snapshots, stand-ins for the stores
and for webhook receivers, and builders of request bodies and ledgers."""
