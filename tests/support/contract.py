"""The reference's server-side API contract, as JSON Schemas of its answers and its request
examples, written out here from its OpenAPI document so that the suite stands alone.

Answers are checked with their formats (``date-time``, ``uuid``) as a client generated from that
document would read them.
"""

from jsonschema import Draft202012Validator, FormatChecker


def nullable(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


STRING, NUMBER, INTEGER, BOOLEAN = ({"type": name} for name in ("string", "number", "integer", "boolean"))
DATE_TIME = {"type": "string", "format": "date-time"}
UUID = {"type": "string", "format": "uuid"}

ERROR_RESPONSE = {
    "type": "object",
    "properties": {
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"source": nullable(STRING), "errors": {"type": "array", "items": STRING}},
            },
        },
        "error_code": STRING,
        "status_code": INTEGER,
    },
    "required": ["errors", "error_code", "status_code"],
}

OFFER = {
    "type": "object",
    "properties": {
        "category": {"type": "string", "enum": ["introductory", "promotional", "offer_code", "win_back"]},
        "type": {"type": "string", "enum": ["free_trial", "pay_as_you_go", "pay_up_front"]},
        "id": nullable(STRING),
    },
    "required": ["category", "type"],
}
ACCESS_LEVEL = {
    "type": "object",
    "properties": {
        "access_level_id": STRING,
        "store": STRING,
        "store_product_id": STRING,
        "store_base_plan_id": nullable(STRING),
        "store_transaction_id": STRING,
        "store_original_transaction_id": STRING,
        "offer": nullable(OFFER),
        "starts_at": nullable(DATE_TIME),
        "purchased_at": DATE_TIME,
        "originally_purchased_at": DATE_TIME,
        "expires_at": nullable(DATE_TIME),
        "renewal_cancelled_at": nullable(DATE_TIME),
        "billing_issue_detected_at": nullable(DATE_TIME),
        "is_in_grace_period": BOOLEAN,
        "cancellation_reason": nullable(STRING),
    },
}
SUBSCRIPTION = {
    "type": "object",
    "properties": {
        "store": STRING,
        "store_product_id": STRING,
        "store_base_plan_id": nullable(STRING),
        "store_transaction_id": STRING,
        "store_original_transaction_id": STRING,
        "offer": nullable(OFFER),
        "environment": STRING,
        "purchased_at": DATE_TIME,
        "originally_purchased_at": DATE_TIME,
        "expires_at": nullable(DATE_TIME),
        "renewal_cancelled_at": nullable(DATE_TIME),
        "billing_issue_detected_at": nullable(DATE_TIME),
        "is_in_grace_period": BOOLEAN,
        "cancellation_reason": nullable(STRING),
    },
}
NON_SUBSCRIPTION = {
    "type": "object",
    "properties": {
        "purchase_id": UUID,
        "store": STRING,
        "store_product_id": STRING,
        "store_base_plan_id": nullable(STRING),
        "store_transaction_id": STRING,
        "store_original_transaction_id": STRING,
        "purchased_at": DATE_TIME,
        "environment": STRING,
        "is_refund": BOOLEAN,
        "is_consumable": BOOLEAN,
    },
}
PROFILE_RESPONSE = {
    "type": "object",
    "properties": {
        "data": {
            "type": "object",
            "properties": {
                "app_id": UUID,
                "profile_id": UUID,
                "customer_user_id": nullable(STRING),
                "total_revenue_usd": NUMBER,
                "segment_hash": STRING,
                "timestamp": INTEGER,
                "custom_attributes": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "key": {"type": "string", "maxLength": 30},
                            "value": {"type": ["string", "number"]},
                        },
                        "required": ["key", "value"],
                    },
                },
                "access_levels": {"type": "array", "items": ACCESS_LEVEL},
                "subscriptions": {"type": "array", "items": SUBSCRIPTION},
                "non_subscriptions": {"type": "array", "items": NON_SUBSCRIPTION},
            },
            "required": [
                "app_id",
                "profile_id",
                "customer_user_id",
                "total_revenue_usd",
                "segment_hash",
                "timestamp",
                "custom_attributes",
                "access_levels",
                "subscriptions",
                "non_subscriptions",
            ],
        }
    },
    "required": ["data"],
}

INTEGRATION_IDS = [
    "adjust_device_id",
    "airbridge_device_id",
    "amplitude_device_id",
    "amplitude_user_id",
    "appmetrica_device_id",
    "appmetrica_profile_id",
    "appsflyer_id",
    "branch_id",
    "facebook_anonymous_id",
    "firebase_app_instance_id",
    "mixpanel_user_id",
    "one_signal_player_id",
    "one_signal_subscription_id",
    "posthog_distinct_user_id",
    "pushwoosh_hwid",
    "tenjin_analytics_installation_id",
]
INTEGRATION_IDS_RESPONSE = {"type": "object", "properties": {name: nullable(STRING) for name in INTEGRATION_IDS}}

PREFERENCE = {"type": "string", "enum": ["grant", "no_preference", "decline"]}
REFUND_SAVER_SETTINGS_RESPONSE = {
    "type": "object",
    "properties": {
        "profile_id": UUID,
        "settings": {"type": "object", "properties": {"consent": BOOLEAN, "custom_preference": PREFERENCE}},
    },
    "required": ["profile_id", "settings"],
}

PRODUCT_SETS = [
    "weekly",
    "monthly",
    "trimonthly",
    "semiannual",
    "annual",
    "lifetime",
    "uncategorised",
    "nonsubscriptions",
    "two_months",
    "consumable",
]
PAYWALL_PRODUCT = {
    "type": "object",
    "properties": {
        "product_id": UUID,
        "title": STRING,
        "product_set": {"type": "string", "enum": PRODUCT_SETS},
        "offer": nullable(
            {
                "type": "object",
                "properties": {"product_offer_id": UUID, "title": STRING},
                "required": ["product_offer_id", "title"],
            }
        ),
    },
    "required": ["product_id", "title", "product_set", "offer"],
}
PAYWALL_LIST_ITEM = {
    "type": "object",
    "properties": {
        "title": STRING,
        "paywall_id": UUID,
        "use_paywall_builder": BOOLEAN,
        "use_paywall_builder_legacy": BOOLEAN,
        "updated_at": DATE_TIME,
        "created_at": DATE_TIME,
        "state": {"type": "string", "enum": ["draft", "live", "inactive", "archived"]},
        "is_deleted": BOOLEAN,
        "web_purchase_url": nullable({"type": "string", "format": "uri"}),
        "products": {"type": "array", "items": PAYWALL_PRODUCT},
    },
    "required": [
        "title",
        "paywall_id",
        "use_paywall_builder",
        "use_paywall_builder_legacy",
        "updated_at",
        "created_at",
        "state",
        "is_deleted",
        "products",
    ],
}
PAYWALL_RESPONSE = {
    **PAYWALL_LIST_ITEM,
    "properties": {
        **PAYWALL_LIST_ITEM["properties"],
        "remote_configs": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"locale": STRING, "data": STRING},
                "required": ["locale", "data"],
            },
        },
        "main_screenshot": nullable(
            {
                "type": "object",
                "properties": {"image_id": INTEGER, "url": {"type": "string", "format": "uri"}},
                "required": ["image_id", "url"],
            }
        ),
    },
}
PAYWALL_LIST_RESPONSE = {
    "type": "object",
    "properties": {
        "data": {"type": "array", "items": PAYWALL_LIST_ITEM},
        "meta": {
            "type": "object",
            "properties": {
                "pagination": {
                    "type": "object",
                    "properties": {"count": INTEGER, "page": INTEGER, "pages": INTEGER},
                    "required": ["count", "page", "pages"],
                }
            },
            "required": ["pagination"],
        },
    },
    "required": ["data", "meta"],
}

STRIPE_VALIDATION_RESPONSE = {
    "type": "object",
    "properties": {"data": nullable({"type": "object"})},
    "required": ["data"],
}
STRIPE_ERROR_RESPONSE = {
    "type": "object",
    "properties": {
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "detail": STRING,
                    "source": {"type": "object", "properties": {"pointer": STRING}, "required": ["pointer"]},
                    "status": STRING,
                },
                "required": ["detail", "source", "status"],
            },
        }
    },
    "required": ["errors"],
}


def _object(properties: dict, required: list[str] | None = None) -> dict:
    return {"type": "object", "properties": properties, "required": required or list(properties)}


BALANCE = _object({"code": STRING, "name": STRING, "balance": INTEGER, "held": INTEGER, "available": INTEGER})
VC_TRANSACTION_RESPONSE = _object({"transaction_id": UUID, "balances": {"type": "array", "items": BALANCE}})
VC_BALANCES_RESPONSE = _object({"response_created_at": INTEGER, "data": {"type": "array", "items": BALANCE}})
VC_HISTORY_RESPONSE = _object(
    {
        "data": {
            "type": "array",
            "items": _object(
                {
                    "transaction_id": UUID,
                    "transaction_type": STRING,
                    "items": {
                        "type": "array",
                        "items": _object({"currency_code": STRING, "amount": INTEGER, "balance_after": INTEGER}),
                    },
                    "metadata": nullable({"type": "object", "additionalProperties": STRING}),
                    "created_at": DATE_TIME,
                },
                ["transaction_id", "transaction_type", "items", "created_at"],
            ),
        },
        "pagination": _object({"next_cursor": nullable(STRING)}),
    }
)


def check(schema: dict, body) -> None:
    """Fail with every way ``body`` departs from ``schema``."""
    errors = [error.message for error in Draft202012Validator(schema, format_checker=FormatChecker()).iter_errors(body)]
    assert errors == [], errors


# The request examples of the document, as it gives them ----------------------------------------------

CREATE_PROFILE = {
    "first_name": "Jane",
    "last_name": "Doe",
    "gender": "f",
    "email": "jane.doe@example.com",
    "phone_number": "+1234567890",
    "birthday": "2000-12-31",
    "ip_country": "FR",
    "store_country": "US",
    "store": "app_store",
    "analytics_disabled": True,
    "custom_attributes": [{"key": "favourite_sport", "value": "yoga"}],
    "installation_meta": {
        "device_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
        "device": "string",
        "locale": "en",
        "os": "string",
        "platform": "iOS",
        "timezone": "Europe/Rome",
        "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
        "idfa": "EA7583CD-A667-48BC-B806-42ECB2B48333",
        "idfv": "E9D48DA5-3930-4B41-8521-D953AECD2F33",
        "advertising_id": "",
        "android_id": "",
        "android_app_set_id": "",
    },
}
# ProfileRequest's own example: every field.
PROFILE_REQUEST = {
    **CREATE_PROFILE,
    "ip_v4_address": "192.168.1.1",
    "store_account_token": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
    "att_status": 3,
    "installation_meta": {
        **CREATE_PROFILE["installation_meta"],
        "device": "iPhone 15 Pro",
        "os": "iOS 17.1",
        "app_build": "1.0.0",
        "app_version": "1.0.0",
        "adapty_sdk_version": "2.0.0",
    },
}
ONE_TIME_PURCHASE = {
    "purchase_type": "one_time_purchase",
    "store": "app_store",
    "environment": "Production",
    "store_product_id": "premium_lifetime",
    "store_transaction_id": "1000000123456789",
    "store_original_transaction_id": "1000000123456789",
    "is_family_shared": False,
    "price": {"country": "US", "currency": "USD", "value": 9.99},
    "purchased_at": "2024-01-15T10:30:00Z",
    "variation_id": "variation_123",
    "offer": None,
    "refunded_at": None,
    "cancellation_reason": None,
}
SUBSCRIPTION_PURCHASE = {
    "purchase_type": "subscription",
    "store": "app_store",
    "environment": "Production",
    "store_product_id": "premium_monthly",
    "store_transaction_id": "1000000123456789",
    "store_original_transaction_id": "1000000123456789",
    "is_family_shared": False,
    "price": {"country": "US", "currency": "USD", "value": 4.99},
    "purchased_at": "2024-01-15T10:30:00Z",
    "originally_purchased_at": "2024-01-15T10:30:00Z",
    "expires_at": "2024-02-15T10:30:00Z",
    "renew_status": True,
    "renew_status_changed_at": None,
    "billing_issue_detected_at": None,
    "grace_period_expires_at": None,
    "variation_id": "variation_123",
    "offer": {"category": "introductory", "type": "free_trial", "id": "trial_offer_123"},
    "refunded_at": None,
    "cancellation_reason": None,
}
GRANTS = [
    {"access_level_id": "premium"},
    {"access_level_id": "premium", "starts_at": "2024-01-01T00:00:00Z", "expires_at": "2024-12-31T23:59:59Z"},
    {"access_level_id": "premium", "starts_at": "2024-01-01T00:00:00Z"},
]
REVOKES = [{"access_level_id": "premium"}, {"access_level_id": "premium", "revoke_at": "2024-12-31T23:59:59Z"}]
REFUND_SAVER_SETTINGS = {"custom_preference": "grant", "consent": True}
STRIPE_VALIDATION = {
    "data": {
        "type": "stripe_receipt_validation_result",
        "attributes": {"customer_user_id": "<YOUR_CUSTOMER_USER_ID>", "stripe_token": "<YOUR_STRIPE_TOKEN>"},
    }
}
# Virtual currency transactions: debit, credit, multi_currency, conversion.
VC_TRANSACTIONS = [
    {"items": [{"currency_code": "COINS", "amount": -10}]},
    {"items": [{"currency_code": "COINS", "amount": 500}]},
    {"items": [{"currency_code": "GOLD", "amount": -50}, {"currency_code": "SILVER", "amount": -200}]},
    {
        "items": [{"currency_code": "SILVER", "amount": -100}, {"currency_code": "GOLD", "amount": 10}],
        "metadata": {"reason": "exchange"},
    },
]
INTEGRATION_IDENTIFIERS = {name: f"example_{name}" for name in INTEGRATION_IDS}
PAYWALL_UPDATE = {
    "remote_configs": [{"locale": "en", "data": '{"title":"Premium Features","subtitle":"Unlock all premium content"}'}]
}


# The Web API (web-api.yaml) ---------------------------------------------------------------------

# Its error bodies' sources are strings, never null.
WEB_ERROR_RESPONSE = {
    "type": "object",
    "properties": {
        "errors": {
            "type": "array",
            "items": {"type": "object", "properties": {"source": STRING, "errors": {"type": "array", "items": STRING}}},
        },
        "error_code": STRING,
        "status_code": INTEGER,
    },
}
WEB_PRODUCT = {
    "type": "object",
    "properties": {
        "title": STRING,
        "is_consumable": BOOLEAN,
        "adapty_product_id": UUID,
        "vendor_product_id": STRING,
        "introductory_offer_eligibility": BOOLEAN,
        "promotional_offer_eligibility": BOOLEAN,
        "base_plan_id": nullable(STRING),
        "offer": nullable(
            {
                "type": "object",
                "properties": {
                    "category": {
                        "type": "string",
                        "enum": ["introductory", "promotional", "offer_code", "win_back", "retention"],
                    },
                    "type": {"type": "string", "enum": ["free_trial", "pay_as_you_go", "pay_up_front", "unknown"]},
                    "id": nullable(STRING),
                },
                "required": ["category", "type"],
            }
        ),
    },
    "required": ["is_consumable", "vendor_product_id"],
}
WEB_PAYWALL_RESPONSE = {
    "type": "object",
    "properties": {
        "placement_id": STRING,
        "variation_id": UUID,
        "paywall_id": UUID,
        "ab_test_name": STRING,
        "paywall_name": STRING,
        "products": {"type": "array", "items": WEB_PRODUCT},
        "remote_config": {
            "type": "object",
            "properties": {"lang": STRING, "data": STRING},
            "required": ["lang", "data"],
        },
    },
    "required": ["placement_id", "variation_id", "paywall_id", "paywall_name", "products"],
}
EMPTY_OBJECT = {"type": "object"}

WEB_PAYWALL = {
    "store": "app_store",
    "locale": "en",
    "placement_id": "PaywallPlacementId",
    "customer_user_id": "user123",
}
WEB_VISIT = {
    "visited_at": "2024-08-24T14:15:22Z",
    "store": "app_store",
    "variation_id": "00000000-0000-0000-0000-000000000000",
    "customer_user_id": "user123",
}
WEB_ATTRIBUTION = {
    "status": "organic",
    "attribution_user_id": "attribution_user_id_value",
    "channel": "marketing_channel_value",
    "campaign": "campaign_name_value",
    "ad_group": "ad_group_name_value",
    "ad_set": "ad_set_name_value",
    "creative": "creative_name_value",
    "customer_user_id": "user123",
}
