"""The Export Analytics API's contract: its request examples and the JSON Schemas of its answers,
written out here from its OpenAPI document so that the suite stands alone."""

from jsonschema import Draft202012Validator

NUMBER, INTEGER, STRING, BOOLEAN = ({"type": name} for name in ("number", "integer", "string", "boolean"))
OBJECT, ARRAY = {"type": "object"}, {"type": "array"}


def nullable(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


def shape(properties: dict, **extra) -> dict:
    return {"type": "object", "properties": properties, **extra}


PERIOD = shape({"date_from": STRING, "date_to": STRING, "period_unit": STRING})
METRIC_DATA = shape(
    {
        "data": {"type": "array", "items": OBJECT},
        "value": NUMBER,
        "value_from": nullable(NUMBER),
        "value_to": nullable(NUMBER),
        "compare_value_from": nullable(NUMBER),
        "compare_value_to": nullable(NUMBER),
        "title": STRING,
        "type": STRING,
        "default_aggregation": STRING,
        "description": STRING,
        "metric_name": STRING,
        "is_json": BOOLEAN,
        "unit": STRING,
        "recommended_period": nullable(PERIOD),
    }
)
ANALYTICS = shape({"data": {"type": "object", "additionalProperties": METRIC_DATA}})
_COHORT_MONEY = ("arpas", "appas", "anrpas", "anrppu", "apppu", "arppu", "anrpu", "appu", "arpu")
COHORT_VALUE = shape(
    {
        **{f"{name}_usd": NUMBER for name in _COHORT_MONEY},
        "installs": INTEGER,
        "period": INTEGER,
        **{f"{name}_usd": NUMBER for name in ("revenue", "proceeds", "net_revenue")},
        **{
            f"{name}_relative": NUMBER
            for name in ("revenue", "proceeds", "net_revenue", "subscriptions", "subscribers")
        },
        "subscriptions": INTEGER,
        "subscribers": INTEGER,
        "currently_active_period": BOOLEAN,
    }
)
COHORT = shape(
    {
        "data": {
            "type": "array",
            "items": shape(
                {
                    "segment_start_date": STRING,
                    "type": STRING,
                    "title": STRING,
                    "total_installs": INTEGER,
                    "total_subscriptions": INTEGER,
                    "total_paid_subscribers": INTEGER,
                    **{f"total_{name}_usd": NUMBER for name in ("revenue", "proceeds", "net_revenue")},
                    **{f"total_{name}_usd": NUMBER for name in _COHORT_MONEY},
                    "predict": nullable(OBJECT),
                    "values": {"type": "array", "items": COHORT_VALUE},
                }
            ),
        }
    }
)
CONVERSION = shape(
    {
        "data": {"type": "array", "items": OBJECT},
        "value": NUMBER,
        "value_from": INTEGER,
        "value_to": INTEGER,
        "compare_value_from": nullable(NUMBER),
        "compare_value_to": nullable(NUMBER),
        "title": STRING,
        "type": STRING,
        "default_aggregation": STRING,
        "description": STRING,
        "metric_name": STRING,
        "is_json": BOOLEAN,
        "unit": STRING,
        "recommended_period": PERIOD,
    }
)
FUNNEL_VALUE = shape(
    {
        "period": INTEGER,
        "title": STRING,
        "value": INTEGER,
        "value_relative": NUMBER,
        "relative_changes": NUMBER,
        "following_changes": shape({"title": STRING, "value": INTEGER, "value_relative": NUMBER}),
        "churn_reason_title": STRING,
        "churn_reasons": {"type": "array", "items": OBJECT},
        "values": {"type": "array", "items": OBJECT},
    }
)
FUNNEL = shape(
    {
        "data": {
            "type": "array",
            "items": shape({"title": STRING, "type": STRING, "values": {"type": "array", "items": FUNNEL_VALUE}}),
        }
    }
)
LTV_METRIC = shape(
    {
        "data": {
            "type": "array",
            "items": shape(
                {
                    "title": STRING,
                    "type": STRING,
                    "value": NUMBER,
                    "values": {"type": "array", "items": OBJECT},
                    "cohort_size": INTEGER,
                }
            ),
        },
        "description": STRING,
        "value": NUMBER,
        "unit": STRING,
        "title": STRING,
    }
)
LTV = shape({name: LTV_METRIC for name in ("revenue", "proceeds", "net_revenue")})
RETENTION = shape(
    {
        "data": {"type": "array", "items": OBJECT},
        "title": STRING,
        "metric_name": STRING,
        "description": STRING,
        "value_type": nullable(STRING),
    }
)

# Each operation: its example request (verbatim from the document) and its answer's schema.
EXAMPLES = {
    "analytics": (
        {
            "chart_id": "revenue",
            "filters": {
                "date": ["2024-01-01", "2024-12-31"],
                "country": ["us"],
                "attribution_channel": ["social_media_influencers"],
            },
            "period_unit": "week",
            "segmentation": "attribution_campaign",
        },
        ANALYTICS,
    ),
    "cohort": (
        {
            "filters": {"date": ["2024-04-01", "2024-09-30"], "store": ["app_store"], "country": ["us"]},
            "period_unit": "month",
            "period_type": "renewals",
            "value_type": "absolute",
            "value_field": "subscriptions",
        },
        COHORT,
    ),
    "conversion": (
        {
            "filters": {"date": ["2024-01-01", "2024-12-31"]},
            "from_period": 1,
            "to_period": "6+",
            "period_unit": "month",
            "date_type": "purchase_date",
            "segmentation": "country",
            "format": "json",
        },
        CONVERSION,
    ),
    "funnel": (
        {
            "filters": {
                "date": ["2024-01-01", "2024-12-31"],
                "compare_date": ["2023-01-01", "2023-12-31"],
                "offer_category": ["promotional"],
            },
            "period_unit": "quarter",
            "show_value_as": "absolute",
            "format": "csv",
        },
        FUNNEL,
    ),
    "ltv": (
        {
            "filters": {
                "date": ["2024-01-01", "2024-12-31"],
                "compare_date": ["2023-01-01", "2023-12-31"],
                "offer_category": ["introductory"],
                "store": ["app_store"],
                "country": ["us"],
                "attribution_source": ["appsflyer"],
                "attribution_status": ["organic"],
                "attribution_channel": ["social_media"],
            },
            "period_unit": "quarter",
            "period_type": "renewals",
            "segmentation": "store_product_id",
            "format": "csv",
        },
        LTV,
    ),
    "retention": (
        {
            "filters": {"date": ["2024-01-01", "2024-12-31"], "compare_date": ["2023-01-01", "2023-12-31"]},
            "period_unit": "quarter",
            "period_type": "renewals",
            "segmentation": "store_product_id",
            "format": "csv",
        },
        RETENTION,
    ),
}


def check(schema: dict, answer: dict) -> None:
    """Fail with every way ``answer`` breaks ``schema``."""
    errors = sorted(Draft202012Validator(schema).iter_errors(answer), key=str)
    assert not errors, "\n".join(f"{list(error.absolute_path)}: {error.message}" for error in errors)
