"""Admin API shapes for webhook endpoints and dead-letter replays."""

from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, HttpUrl, StringConstraints, UrlConstraints

from subledger.core.fields import Strict

Url = Annotated[HttpUrl, UrlConstraints(max_length=2048)]  # the column's width; pydantic's default is 2083
# Sent as a header: printable ASCII only.
Authorization = Annotated[str, Field(min_length=1, max_length=2048, pattern=r"^[\x20-\x7e]+$")]
# The name a receiver gets for an event type instead of the reference's; it may not be empty.
EventName = Annotated[str, StringConstraints(min_length=1, max_length=255)]


class EndpointOptions(Strict):
    """The reference's webhook options (its defaults, but for user attributes and attribution,
    which subledger sent before it had the options)."""

    send_trial_price: bool = False
    exclude_historical_events: bool = False
    send_user_attributes: bool = True
    send_attribution: bool = True
    send_play_store_purchase_token: bool = False


class EndpointIn(EndpointOptions):
    url: Url | None = None  # production events
    sandbox_url: Url | None = None  # sandbox events
    event_types: Annotated[list[str], Field(min_length=1)] | None = None
    event_names: dict[str, EventName] | None = None
    authorization: Authorization | None = None
    sandbox_authorization: Authorization | None = None


class EndpointChange(Strict):
    """A PATCH: what it names changes (null removes a URL, an authorization or the names);
    the rest stays."""

    url: Url | None = None
    sandbox_url: Url | None = None
    event_types: Annotated[list[str], Field(min_length=1)] | None = None
    event_names: dict[str, EventName] | None = None
    authorization: Authorization | None = None
    sandbox_authorization: Authorization | None = None
    send_trial_price: bool | None = None
    exclude_historical_events: bool | None = None
    send_user_attributes: bool | None = None
    send_attribution: bool | None = None
    send_play_store_purchase_token: bool | None = None


class TestEventIn(Strict):
    target: Literal["production", "sandbox"] = "production"
    event_type: str = "subscription_started"


class ReplayIn(Strict):
    delivery_ids: list[UUID] | None = None
