"""Request bodies of the Web API: each names its profile in the body."""

from typing import Literal
from uuid import UUID

from pydantic import model_validator
from pydantic_core import PydanticCustomError

from subledger.core.dates import DateTimeField
from subledger.core.fields import NonEmpty255, Str255, Strict
from subledger.core.profile_ref import ProfileRef
from subledger.paywalls.schemas import Locale


class ForProfile(Strict):
    """A request about a profile: ``customer_user_id`` or ``profile_id`` names it."""

    customer_user_id: NonEmpty255 | None = None
    profile_id: NonEmpty255 | None = None

    @model_validator(mode="after")
    def _names_a_profile(self) -> "ForProfile":
        if self.customer_user_id is None and self.profile_id is None:
            raise PydanticCustomError("base_error", "Either customer_user_id or profile_id is required.")
        return self

    @property
    def source(self) -> str:
        """The field that names the profile, where an error about it points."""
        return "profile_id" if self.profile_id is not None else "customer_user_id"

    def ref(self) -> ProfileRef | None:
        """How the profile is named; None for a profile_id that no profile can have (not a UUID)."""
        if self.profile_id is None:
            return ProfileRef(customer_user_id=self.customer_user_id)
        try:
            profile_id = UUID(self.profile_id)
        except ValueError:
            return None
        return ProfileRef(customer_user_id=self.customer_user_id, profile_id=profile_id)


class PaywallRequest(ForProfile):
    store: NonEmpty255
    locale: Locale | None = None
    placement_id: NonEmpty255


class VisitRequest(ForProfile):
    visited_at: DateTimeField | None = None
    store: NonEmpty255
    variation_id: UUID


class AttributionRequest(ForProfile):
    status: Literal["organic", "non_organic", "unknown"]
    attribution_user_id: Str255 | None = None
    channel: Str255 | None = None
    campaign: Str255 | None = None
    ad_group: Str255 | None = None
    ad_set: Str255 | None = None
    creative: Str255 | None = None

    def values(self) -> dict[str, str | None]:
        return self.model_dump(exclude={"customer_user_id", "profile_id"})
