"""Profile use cases: create, get, update, delete. One database transaction each."""

from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from subledger.core.dates import format_datetime
from subledger.core.errors import NON_FIELD, ApiError, bad_request, profile_not_found
from subledger.core.profile_ref import ProfileRef
from subledger.core.runtime import Runtime
from subledger.events import service as events_service
from subledger.events.rules import Change
from subledger.metrics import upkeep as metrics_upkeep
from subledger.profiles import repository, rules
from subledger.profiles.schemas import IntegrationIdsIn, ProfileFields, integration_ids_object, profile_object


def load(
    conn: Connection,
    app_id: UUID,
    ref: ProfileRef,
    for_update: bool = False,
    missing: Callable[[], ApiError] = profile_not_found,
) -> dict[str, Any]:
    """The profile the request names, read in the caller's transaction (``for_update``: locked
    until it ends); ``missing()`` is raised when there is none."""
    profile = repository.find_profile(
        conn, app_id, profile_id=ref.profile_id, customer_user_id=ref.customer_user_id, for_update=for_update
    )
    return _found(profile, ref, missing)


def _found(
    profile: dict[str, Any] | None, ref: ProfileRef, missing: Callable[[], ApiError] = profile_not_found
) -> dict[str, Any]:
    """The profile the headers name, or the contract's 404 (``missing``) or 400."""
    if profile is None:
        raise missing()
    if ref.profile_id is not None and ref.customer_user_id is not None:
        if profile["customer_user_id"] != ref.customer_user_id:
            raise _different_profiles()
    return profile


def current_state(profile: dict[str, Any], now: datetime) -> dict[str, list[Any]]:
    """The profile's access levels and purchases as of ``now``."""
    return rules.render_state(profile["derived"], format_datetime(now))


def respond(profile: dict[str, Any], now: datetime, timestamp: int) -> dict[str, Any]:
    """The Profile response for this moment."""
    moment = format_datetime(now)
    state = rules.render_state(profile["derived"], moment)
    segment = rules.segment_hash(profile, rules.active_access_levels(state, moment))
    return profile_object(profile, state, segment, timestamp)


def latest_attribution(profile: dict[str, Any]) -> dict[str, Any]:
    """The profile's newest attribution of any source (empty when it has none)."""
    return rules.latest_attribution(profile["attribution"])


def active_access_level_ids(profile: dict[str, Any], now: datetime) -> list[str]:
    moment = format_datetime(now)
    return rules.active_access_levels(rules.render_state(profile["derived"], moment), moment)


def lock(conn: Connection, app_id: UUID, ref: ProfileRef) -> dict[str, Any]:
    """The addressed profile, locked for the rest of the caller's write transaction."""
    return load(conn, app_id, ref, for_update=True)


def find_locked(
    conn: Connection, app_id: UUID, profile_id: UUID | None = None, customer_user_id: str | None = None
) -> dict[str, Any] | None:
    """The profile with this id (or customer_user_id), locked as ``lock`` does; None when there is none."""
    return repository.find_profile(
        conn, app_id, profile_id=profile_id, customer_user_id=customer_user_id, for_update=True
    )


def find_profile_id(rt: Runtime, app_id: UUID, name: str) -> UUID | None:
    """The id of the app's profile a person names by customer_user_id or by profile_id."""
    with rt.db.read() as conn:
        found = repository.find_profile(conn, app_id, customer_user_id=name)
        if found is None:
            try:
                found = repository.find_profile(conn, app_id, profile_id=UUID(name))
            except ValueError:
                return None
    return found["id"] if found else None


def save(conn: Connection, profile: dict[str, Any], values: dict[str, Any]) -> None:
    """Write ``values`` into a profile locked in the caller's transaction, and into ``profile``."""
    repository.update_profile(conn, profile["id"], values)
    profile.update(values)


def _attribute_changes(fields: ProfileFields) -> list[tuple[str, Any]]:
    return [(item.key, item.value) for item in fields.custom_attributes or []]


def create_profile(
    rt: Runtime, app_id: UUID, ref: ProfileRef, fields: ProfileFields, platform: str | None
) -> dict[str, Any]:
    """The profile the headers name, made when there is none, as the reference documents it: a
    customer_user_id alone names a profile, or makes one with a new profile_id; a profile_id alone
    names one, or makes an anonymous one with that id; both name a profile with both, attach the
    customer_user_id to an anonymous profile, or make a profile with both. The fields sent are
    applied, as by an update, to a profile that exists.

    A profile_id that another app's profile holds cannot be made here: 404, as for one not found."""
    for attempt in range(2):
        now = rt.clock.now()
        try:
            with rt.db.write() as conn:
                existing = _existing(conn, app_id, ref)
                if existing is None:
                    profile = insert_new(conn, rt, app_id, ref.customer_user_id, now, fields, platform, ref.profile_id)
                    return respond(profile, now, profile["last_timestamp_ms"])
                profile, attach = existing
                timestamp = _update(conn, rt, profile, fields, platform, now, attach)
            return respond(profile, now, timestamp)
        except IntegrityError:
            # Made by another writer meanwhile (the next attempt finds it), or a profile_id another
            # app's profile holds (profile ids are unique on the server).
            if attempt:
                raise profile_not_found() from None
    raise AssertionError("unreachable")


def _existing(conn: Connection, app_id: UUID, ref: ProfileRef) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The profile a create names, locked, and what attaching the customer_user_id changes in it;
    None when it is to be made. 400 when the headers name two different profiles."""
    by_id = by_cuid = None
    if ref.profile_id is not None:
        by_id = repository.find_profile(conn, app_id, profile_id=ref.profile_id, for_update=True)
    if ref.customer_user_id is not None:
        by_cuid = repository.find_profile(conn, app_id, customer_user_id=ref.customer_user_id, for_update=True)
    if by_id is None and by_cuid is None:
        return None
    if ref.profile_id is None or ref.customer_user_id is None:
        named = by_id or by_cuid
        return None if named is None else (named, {})
    if by_id is not None and by_cuid is None and by_id["customer_user_id"] is None:
        return by_id, {"customer_user_id": ref.customer_user_id}  # an anonymous profile gets its user id
    if by_id is None or by_cuid is None or by_id["id"] != by_cuid["id"]:
        raise _different_profiles()
    return by_id, {}


def _different_profiles() -> ApiError:
    return bad_request(
        "value_error", NON_FIELD, "adapty-profile-id and adapty-customer-user-id name different profiles."
    )


def insert_new(
    conn: Connection,
    rt: Runtime,
    app_id: UUID,
    customer_user_id: str | None,
    now: datetime,
    fields: ProfileFields | None = None,
    platform: str | None = None,
    profile_id: UUID | None = None,
) -> dict[str, Any]:
    """Insert a profile in the caller's transaction (with its ``profile_created`` event); it is
    returned as a locked profile is, with its ``latest_installation``."""
    fields = fields or ProfileFields()
    profile = {
        "id": profile_id or uuid4(),
        "app_id": app_id,
        "customer_user_id": customer_user_id,
        "first_name": None,
        "last_name": None,
        "gender": None,
        "email": None,
        "phone_number": None,
        "birthday": None,
        "ip_country": None,
        "ip_v4_address": None,
        "store_country": None,
        "store": None,
        "store_account_token": None,
        "att_status": None,
        "integration_ids": None,
        "attribution": None,
        "analytics_disabled": False,
        **fields.sent(),
        "custom_attributes": rules.merge_custom_attributes({}, _attribute_changes(fields)),
        "derived": None,
        "total_revenue_usd": 0,
        "created_at": now,
        "updated_at": now,
        "last_timestamp_ms": rt.timestamps.issue(),
    }
    profile["rates_generation"] = repository.insert_profile(conn, profile)
    installation = None
    if fields.installation_meta is not None:
        installation = rules.installation_values(
            fields.installation_meta.model_dump(), profile["analytics_disabled"], platform
        )
        repository.upsert_installation(conn, profile["id"], installation, now)
    profile["latest_installation"] = installation
    events_service.emit(conn, rt, profile, [Change("profile_created", now)], [], now)
    return profile


def already_exists() -> ApiError:
    return bad_request("profile_already_exists", NON_FIELD, "A profile with this customer_user_id already exists.")


def get_profile(rt: Runtime, app_id: UUID, ref: ProfileRef) -> dict[str, Any]:
    with rt.db.read() as conn:
        profile = load(conn, app_id, ref)
    return _current(rt, profile)


async def get_profile_on_loop(rt: Runtime, app_id: UUID, ref: ProfileRef) -> dict[str, Any]:
    """``get_profile`` for a request, on the event loop: SQLite reads the file in microseconds,
    and PostgreSQL's read is awaited (``core.loop_reads``) while the loop serves others."""
    if rt.db.loop_reads is None:
        return get_profile(rt, app_id, ref)
    profile = await repository.find_profile_on_loop(
        rt.db.loop_reads, app_id, profile_id=ref.profile_id, customer_user_id=ref.customer_user_id
    )
    return _current(rt, _found(profile, ref))


def _current(rt: Runtime, profile: dict[str, Any]) -> dict[str, Any]:
    return respond(profile, rt.clock.now(), rt.timestamps.issue(profile["last_timestamp_ms"] + 1))


def record(
    rt: Runtime, app_id: UUID, ref: ProfileRef, missing: Callable[[], ApiError] = profile_not_found
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The stored profile (every field) and its latest installation."""
    with rt.db.read() as conn:
        profile = load(conn, app_id, ref, missing=missing)
        return profile, repository.latest_installation(conn, profile["id"])


def has_profile_id(rt: Runtime, app_id: UUID, profile_id: UUID) -> bool:
    with rt.db.read() as conn:
        return repository.find_profile(conn, app_id, profile_id=profile_id) is not None


def update_profile(
    rt: Runtime, app_id: UUID, ref: ProfileRef, fields: ProfileFields, platform: str | None
) -> dict[str, Any]:
    now = rt.clock.now()
    with rt.db.write() as conn:
        profile = load(conn, app_id, ref, for_update=True)
        timestamp = _update(conn, rt, profile, fields, platform, now)
    return respond(profile, now, timestamp)


def _update(
    conn: Connection,
    rt: Runtime,
    profile: dict[str, Any],
    fields: ProfileFields,
    platform: str | None,
    now: datetime,
    changes: dict[str, Any] | None = None,
) -> int:
    """Apply the fields sent (and ``changes``) to a profile locked in the caller's transaction;
    the response timestamp."""
    changes = {**(changes or {}), **fields.sent()}
    if fields.custom_attributes is not None:
        changes["custom_attributes"] = rules.merge_custom_attributes(
            profile["custom_attributes"], _attribute_changes(fields)
        )
    analytics_disabled = changes.get("analytics_disabled", profile["analytics_disabled"])
    if analytics_disabled and not profile["analytics_disabled"]:
        repository.clear_ad_ids(conn, profile["id"], rules.AD_ID_FIELDS)
    if fields.installation_meta is not None:
        meta = rules.installation_values(fields.installation_meta.model_dump(), analytics_disabled, platform)
        repository.upsert_installation(conn, profile["id"], meta, now)
    timestamp = rt.timestamps.issue(profile["last_timestamp_ms"] + 1)
    changes.update(updated_at=now, last_timestamp_ms=timestamp)
    save(conn, profile, changes)
    return timestamp


def _integration_profile_not_found() -> ApiError:
    """The integration identifiers endpoints' own 404."""
    return ApiError.one(404, "profile_not_found", None, "Profile not found")


def integration_ids(rt: Runtime, app_id: UUID, ref: ProfileRef) -> dict[str, str | None]:
    with rt.db.read() as conn:
        profile = load(conn, app_id, ref, missing=_integration_profile_not_found)
    return integration_ids_object(profile["integration_ids"])


def set_integration_ids(rt: Runtime, app_id: UUID, ref: ProfileRef, body: IntegrationIdsIn) -> None:
    """Set the ids sent (null removes one); the profile's others stay."""
    changes = body.sent()
    if not changes:
        raise bad_request("validation_error", NON_FIELD, "At least one integration identifier must be provided.")
    now = rt.clock.now()
    with rt.db.write() as conn:
        profile = load(conn, app_id, ref, for_update=True, missing=_integration_profile_not_found)
        merged = {**(profile["integration_ids"] or {}), **changes}
        kept = {name: value for name, value in merged.items() if value is not None}
        timestamp = rt.timestamps.issue(profile["last_timestamp_ms"] + 1)
        save(conn, profile, {"integration_ids": kept or None, "updated_at": now, "last_timestamp_ms": timestamp})


def add_attribution(
    rt: Runtime, app_id: UUID, ref: ProfileRef, source: str, values: dict[str, Any], missing: Callable[[], ApiError]
) -> None:
    """Give the profile an attribution (``status``, ``channel``, ``campaign``...): every one is kept,
    and the latest of a source is the profile's current one."""
    now = rt.clock.now()
    with rt.db.write() as conn:
        profile = load(conn, app_id, ref, for_update=True, missing=missing)
        repository.insert_attribution(
            conn,
            {
                "id": uuid4(),
                "app_id": app_id,
                "profile_id": profile["id"],
                "source": source,
                **values,
                "created_at": now,
            },
        )
        current = {**(profile["attribution"] or {}), source: rules.attribution_object(values, now)}
        timestamp = rt.timestamps.issue(profile["last_timestamp_ms"] + 1)
        save(conn, profile, {"attribution": current, "updated_at": now, "last_timestamp_ms": timestamp})


def delete_profile(rt: Runtime, app_id: UUID, ref: ProfileRef) -> None:
    now = rt.clock.now()
    with rt.db.write() as conn:
        profile = load(conn, app_id, ref, for_update=True)
        events_service.emit(conn, rt, profile, [Change("profile_deleted", now)], [], now)
        metrics_upkeep.forget(conn, profile, now)
        repository.delete_profile(conn, profile["id"])
