"""Web API use cases: each the paywalls' or profiles' own, for the profile the body names."""

from collections.abc import Callable
from typing import Any
from uuid import UUID

from subledger.core.errors import ApiError
from subledger.core.profile_ref import ProfileRef
from subledger.core.runtime import Runtime
from subledger.paywalls import service as paywalls_service
from subledger.profiles import service as profiles_service
from subledger.web_api.schemas import AttributionRequest, ForProfile, PaywallRequest, VisitRequest

# The attributions the Web API gives a profile are its own source's, beside any other.
ATTRIBUTION_SOURCE = "custom"


def _profile_missing(body: ForProfile) -> Callable[[], ApiError]:
    def missing() -> ApiError:
        return ApiError.one(404, "profile_does_not_exist", body.source, "Profile not found")

    return missing


def _ref(body: ForProfile) -> ProfileRef:
    ref = body.ref()
    if ref is None:  # a profile_id that is not a UUID names no profile
        raise _profile_missing(body)()
    return ref


def paywall(rt: Runtime, app_id: UUID, body: PaywallRequest) -> dict[str, Any]:
    return paywalls_service.paywall_for_placement(
        rt, app_id, _ref(body), body.placement_id, body.locale, body.store, _profile_missing(body)
    )


def visit(rt: Runtime, app_id: UUID, body: VisitRequest) -> None:
    paywalls_service.record_view(
        rt, app_id, _ref(body), body.variation_id, body.visited_at, body.store, missing=_profile_missing(body)
    )


def attribution(rt: Runtime, app_id: UUID, body: AttributionRequest) -> None:
    profiles_service.add_attribution(rt, app_id, _ref(body), ATTRIBUTION_SOURCE, body.values(), _profile_missing(body))
