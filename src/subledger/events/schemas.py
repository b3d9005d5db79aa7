"""Admin API shapes for webhook endpoints and dead-letter replays."""

from typing import Annotated
from uuid import UUID

from pydantic import Field, HttpUrl, UrlConstraints

from subledger.core.fields import Strict


class EndpointIn(Strict):
    url: Annotated[HttpUrl, UrlConstraints(max_length=2048)]  # the column's width; pydantic's default is 2083
    event_types: Annotated[list[str], Field(min_length=1)] | None = None
    # Sent as a header: printable ASCII only.
    authorization: Annotated[str, Field(min_length=1, max_length=2048, pattern=r"^[\x20-\x7e]+$")] | None = None


class ReplayIn(Strict):
    delivery_ids: list[UUID] | None = None
