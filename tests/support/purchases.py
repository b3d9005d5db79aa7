"""Set-transaction bodies."""

# v2 answers date-times as RFC 3339 writes them; requests may spell them either way.
T0 = "2025-01-01T10:00:00.000000+00:00"


T1 = "2025-02-01T10:00:00.000000+00:00"


T2 = "2025-03-01T10:00:00.000000+00:00"


T3 = "2025-04-01T10:00:00.000000+00:00"


def subscription(**overrides) -> dict:
    body = {
        "purchase_type": "subscription",
        "store": "app_store",
        "environment": "Production",
        "store_product_id": "monthly",
        "store_transaction_id": "tx-1",
        "store_original_transaction_id": "orig-1",
        "price": {"country": "US", "currency": "USD", "value": 9.99},
        "purchased_at": T0,
        "originally_purchased_at": T0,
        "expires_at": T1,
        "renew_status": True,
    }
    body.update(overrides)
    return body


def one_time(**overrides) -> dict:
    body = {
        "purchase_type": "one_time_purchase",
        "store": "app_store",
        "store_product_id": "lifetime",
        "store_transaction_id": "otp-1",
        "store_original_transaction_id": "otp-1",
        "price": {"country": "US", "currency": "USD", "value": 49.99},
        "purchased_at": T0,
    }
    body.update(overrides)
    return body
