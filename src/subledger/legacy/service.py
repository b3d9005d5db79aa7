"""Legacy v1 use cases: each is the v2 use case, answered in the v1 profile shape."""

from typing import Any
from uuid import UUID

from pydantic import ValidationError

from subledger.core.dates import format_datetime, parse_datetime
from subledger.core.errors import from_validation_errors
from subledger.core.profile_ref import ProfileRef
from subledger.core.runtime import Runtime
from subledger.legacy import rules
from subledger.legacy.schemas import StripeValidation, V1Attributes, V1Create, V1Grant, V1Revoke
from subledger.profiles import service as profiles_service
from subledger.purchases import service as purchases_service
from subledger.purchases.schemas import RevokeIn, TransactionIn
from subledger.stores.stripe import service as stripe_service


def resolve(rt: Runtime, app_id: UUID, path_id: str) -> ProfileRef:
    """A uuid naming one of the app's profiles is that profile; anything else is a customer_user_id."""
    try:
        profile_id = UUID(path_id)
    except ValueError:
        profile_id = None
    if profile_id is not None and profiles_service.has_profile_id(rt, app_id, profile_id):
        return ProfileRef(profile_id=profile_id)
    return ProfileRef(customer_user_id=path_id)


def get(rt: Runtime, app_id: UUID, ref: ProfileRef, extended: bool = False) -> dict[str, Any]:
    profile, installation = profiles_service.record(rt, app_id, ref)
    now = rt.clock.now()
    state = profiles_service.current_state(profile, now)
    return rules.profile_v1(profile, state, format_datetime(now), installation, extended)


def create(rt: Runtime, app_id: UUID, body: V1Create) -> dict[str, Any]:
    created = profiles_service.create_profile(
        rt, app_id, ProfileRef(customer_user_id=body.customer_user_id), body.profile_fields(), None
    )
    return get(rt, app_id, ProfileRef(profile_id=UUID(created["data"]["profile_id"])))


def update(rt: Runtime, app_id: UUID, ref: ProfileRef, body: V1Attributes) -> dict[str, Any]:
    profiles_service.update_profile(rt, app_id, ref, body.profile_fields(), None)
    return get(rt, app_id, ref)


def delete(rt: Runtime, app_id: UUID, ref: ProfileRef) -> None:
    profiles_service.delete_profile(rt, app_id, ref)


def grant(rt: Runtime, app_id: UUID, ref: ProfileRef, level_id: str, body: V1Grant) -> dict[str, Any]:
    transaction = None
    if body.records_transaction():
        # v2's set-transaction consistency rules are not v1's (a trial may come with a price): the
        # recorded purchase is only checked to be one the ledger can hold.
        try:
            transaction = TransactionIn.model_validate(body.transaction(body.starts_at or rt.clock.now()))
        except ValidationError as invalid:
            raise from_validation_errors(invalid.errors()) from None
    # is_lifetime wins, then expires_at, then duration_days.
    expires_at = None if body.is_lifetime else body.expires_at
    extend_days = body.duration_days if not body.is_lifetime and body.expires_at is None else None
    purchases_service.grant(
        rt,
        app_id,
        ref,
        level_id,
        body.starts_at,
        expires_at,
        extend_days,
        source=body.source(),
        transaction=transaction,
    )
    return get(rt, app_id, ref)


def revoke(rt: Runtime, app_id: UUID, ref: ProfileRef, level_id: str, body: V1Revoke) -> dict[str, Any]:
    """Ends the level now, or at its start when that is later (a level not begun yet never begins).
    A level that has ended already is left as it is: v1 documents no error for it."""
    profile = get(rt, app_id, ref)
    level = profile["data"]["paid_access_levels"].get(level_id)
    now = rt.clock.now()
    if level is not None and level["expires_at"] is not None and level["expires_at"] <= format_datetime(now):
        return profile
    revoke_at = max(now, parse_datetime(level["starts_at"])) if level else now
    purchases_service.revoke_access_level(
        rt, app_id, ref, RevokeIn(access_level_id=level_id, revoke_at=revoke_at), refund=body.is_refund
    )
    return get(rt, app_id, ref)


def validate_stripe(rt: Runtime, app_id: UUID, body: StripeValidation) -> None:
    """Import a Stripe subscription or payment intent and its history for a customer_user_id,
    creating the profile when it has none."""
    attributes = body.data.attributes
    transactions = stripe_service.transactions_for(rt, app_id, attributes.stripe_token)
    purchases_service.import_transactions(rt, app_id, attributes.customer_user_id, transactions)
