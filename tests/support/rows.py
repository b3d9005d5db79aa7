"""A profile row with a value in every column."""

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

NOW = datetime(2025, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)


def full_profile(app_id: uuid.UUID, customer_user_id: str) -> dict:
    """A profile with a value in every column, of every type the table has."""
    return {
        "id": uuid.uuid4(),
        "app_id": app_id,
        "customer_user_id": customer_user_id,
        "first_name": "Zoë",
        "last_name": "O'Brien",
        "gender": "f",
        "email": "zoe@example.com",
        "phone_number": "+15550100",
        "birthday": date(1990, 2, 28),
        "ip_country": "DE",
        "store_country": "FR",
        "store": "app_store",
        "ip_v4_address": "203.0.113.7",
        "store_account_token": uuid.UUID("3fa85f64-5717-4562-b3fc-2c963f66afa6"),
        "att_status": 3,
        "integration_ids": {"appsflyer_id": "af-1"},
        "attribution": {"custom": {"status": "organic", "channel": "ads"}},
        "analytics_disabled": True,
        "custom_attributes": {"level": 3, "ratio": 0.5, "name": "ü\u2028", "none": None},
        "derived": {"access_levels": [{"id": "premium", "expires_at": "2025-04-04T05:06:07.000000+0000"}]},
        "total_revenue_usd": Decimal("12.345678"),
        "rates_generation": 3,
        "created_at": NOW,
        "updated_at": NOW,
        "last_timestamp_ms": 1741064767891,
    }
