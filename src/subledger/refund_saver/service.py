"""Refund Saver use cases: a profile's settings (the contract's endpoints), the app's, and deciding
how to answer a consumption request from the App Store."""

from dataclasses import asdict, dataclass, replace
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import Connection

from subledger.catalog import service as catalog_service
from subledger.core.errors import NON_FIELD, ApiError, bad_request
from subledger.core.profile_ref import ProfileRef
from subledger.core.runtime import Runtime
from subledger.profiles import service as profiles_service
from subledger.purchases import service as purchases_service
from subledger.refund_saver import repository, rules
from subledger.refund_saver.schemas import AppSettingsIn, ProfileSettingsIn

STORE = "app_store"


def _profile_missing() -> ApiError:
    """The settings endpoints' own answer for an unknown profile."""
    return ApiError.one(400, "profile_does_not_exist", None, "Profile does not exist")


def _app_settings(conn: Connection, app_id: UUID) -> rules.AppSettings:
    row = repository.app_settings(conn, app_id)
    if row is None:
        return rules.AppSettings()
    return rules.AppSettings(row["enabled"], row["default_preference"], row["consent_policy"])


def _settings_object(profile_id: UUID, own: dict[str, Any] | None, app: rules.AppSettings) -> dict[str, Any]:
    """The contract's RefundSaverSettingsResponse: what applies to the profile now."""
    own = own or {}
    return {
        "profile_id": str(profile_id),
        "settings": {
            "consent": rules.consented(own.get("consent"), app.consent_policy),
            "custom_preference": own.get("custom_preference") or "no_preference",
        },
    }


def profile_settings(rt: Runtime, app_id: UUID, ref: ProfileRef) -> dict[str, Any]:
    with rt.db.read() as conn:
        profile = profiles_service.load(conn, app_id, ref, missing=_profile_missing)
        return _settings_object(
            profile["id"], repository.profile_settings(conn, profile["id"]), _app_settings(conn, app_id)
        )


def set_profile_settings(rt: Runtime, app_id: UUID, ref: ProfileRef, body: ProfileSettingsIn) -> dict[str, Any]:
    """Change what is sent (null undoes it: back to the app's default)."""
    sent: dict[str, Any] = {
        name: getattr(body, name) for name in ("custom_preference", "consent") if name in body.model_fields_set
    }
    if not sent:
        raise bad_request(
            "validation_error",
            NON_FIELD,
            "Profile refund saver settings must have either consent or custom_preference or both",
        )
    with rt.db.write() as conn:
        profile = profiles_service.load(conn, app_id, ref, for_update=True, missing=_profile_missing)
        own = {"custom_preference": None, "consent": None, **(repository.profile_settings(conn, profile["id"]) or {})}
        own.update(sent, profile_id=profile["id"], updated_at=rt.clock.now())
        repository.save_profile_settings(conn, own)
        return _settings_object(profile["id"], own, _app_settings(conn, app_id))


def app_settings(rt: Runtime, app_id: UUID) -> dict[str, Any]:
    with rt.db.read() as conn:
        return asdict(_app_settings(conn, app_id))


def configure(rt: Runtime, app_id: UUID, body: AppSettingsIn) -> dict[str, Any]:
    """Turn the Refund Saver on or off, and set the app's defaults; what is not sent stays."""
    with rt.db.write() as conn:
        settings = replace(_app_settings(conn, app_id), **{name: getattr(body, name) for name in body.model_fields_set})
        repository.save_app_settings(conn, {"app_id": app_id, **asdict(settings), "updated_at": rt.clock.now()})
    return asdict(settings)


@dataclass(frozen=True)
class Decision:
    """How a consumption request is answered: ``answer`` is None when it is not (``note`` says why)."""

    note: str
    profile_id: UUID | None = None
    answer: rules.Answer | None = None
    sample_content_provided: bool = False

    def unanswered(self, note: str) -> "Decision":
        return replace(self, note=note, answer=None)


def decide(rt: Runtime, app_id: UUID, store_transaction_id: str) -> Decision:
    """How to answer the App Store's consumption request for a transaction, from the ledger and
    the settings of the app and of the profile that bought it."""
    now = rt.clock.now()
    with rt.db.read() as conn:
        app = _app_settings(conn, app_id)
        if not app.enabled:
            return Decision("not answered: the Refund Saver is off")
        tx = purchases_service.find_transaction(conn, app_id, STORE, store_transaction_id)
        if tx is None:
            return Decision("not answered: the transaction is not in the ledger")
        own = repository.profile_settings(conn, tx["profile_id"]) or {}
        if not rules.consented(own.get("consent"), app.consent_policy):
            return Decision("not answered: the customer did not consent to share data", tx["profile_id"])
        product = catalog_service.catalog(conn, app_id).product(STORE, tx["store_product_id"], tx["store_base_plan_id"])
        chain = purchases_service.chain_transactions(conn, tx["profile_id"], STORE, tx["store_original_transaction_id"])
        earlier = repository.earlier_requests(conn, app_id, store_transaction_id)
    auto_renewable = tx["purchase_type"] == "subscription"
    period = None if product is None or product.is_consumable else product.period
    share = None if auto_renewable else rules.consumed_share(tx["purchased_at"], period, now)
    answer = rules.answer(own.get("custom_preference"), app.default_preference, earlier, auto_renewable, share)
    trial = any(item["offer_type"] == "free_trial" and item["purchased_at"] <= tx["purchased_at"] for item in chain)
    preference = answer.preference or "no preference"
    return Decision(f"answered: {preference}", tx["profile_id"], answer, sample_content_provided=trial)


def record(rt: Runtime, app_id: UUID, notification_id: str, store_transaction_id: str, decision: Decision) -> None:
    """Keep the request and its answer in the Refund Saver's log (once per notification)."""
    answer = decision.answer
    with rt.db.write() as conn:
        repository.record_request(
            conn,
            {
                "id": uuid4(),
                "app_id": app_id,
                "notification_id": notification_id,
                "store_transaction_id": store_transaction_id,
                "profile_id": decision.profile_id,
                "received_at": rt.clock.now(),
                "answered": answer is not None,
                "refund_preference": answer.preference if answer else None,
                "consumption_percentage": answer.consumption if answer else None,
                "note": decision.note[:1024],
            },
        )


def requests(rt: Runtime, app_id: UUID, limit: int = 100) -> list[dict[str, Any]]:
    """The latest consumption requests and what was answered."""
    with rt.db.read() as conn:
        rows = repository.app_requests(conn, app_id, limit)
    return [
        {
            "notification_id": row["notification_id"],
            "store_transaction_id": row["store_transaction_id"],
            "profile_id": str(row["profile_id"]) if row["profile_id"] else None,
            "received_at": row["received_at"].isoformat(),
            "answered": row["answered"],
            "refund_preference": row["refund_preference"],
            "consumption_percentage": row["consumption_percentage"],
            "note": row["note"],
        }
        for row in rows
    ]
