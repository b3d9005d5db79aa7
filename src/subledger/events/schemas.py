"""Admin API shapes for webhook endpoints and dead-letter replays."""

from typing import Annotated
from uuid import UUID

from pydantic import Field, HttpUrl

from subledger.core.fields import Strict


class EndpointIn(Strict):
    url: HttpUrl
    event_types: Annotated[list[str], Field(min_length=1)] | None = None
    authorization: Annotated[str, Field(min_length=1, max_length=2048)] | None = None


class ReplayIn(Strict):
    delivery_ids: list[UUID] | None = None
