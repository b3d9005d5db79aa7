"""Paywall use cases: management, the contract's list/get/update, choosing a
placement's paywall for a profile, views and metrics."""

from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import Connection

from subledger.catalog import service as catalog_service
from subledger.core.addressing import ProfileRef
from subledger.core.dates import format_datetime
from subledger.core.errors import NON_FIELD, ApiError, bad_request
from subledger.core.runtime import Runtime
from subledger.paywalls import repository, rules
from subledger.paywalls.schemas import (
    AbTestIn,
    AudienceIn,
    PaywallIn,
    PaywallPatch,
    PlacementIn,
    RemoteConfigPut,
    ViewIn,
    paywall_object,
)
from subledger.profiles import service as profiles_service
from subledger.purchases import rules as purchases_rules

ORDERINGS = {"state_index", "name", "created_at", "updated_at"}
DEFAULT_LANG = "en"


def paywall_not_found() -> ApiError:
    return ApiError.one(404, "paywall_does_not_exist", None, "Paywall not found")


def _require_products(conn: Connection, app_id: UUID, product_ids: list[UUID]) -> None:
    known = catalog_service.products_by_id(conn, app_id)
    unknown = [str(pid) for pid in product_ids if str(pid) not in known]
    if unknown:
        raise bad_request("value_error", "product_ids", f"Unknown products: {', '.join(unknown)}.")


def _paywall_row_out(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "paywall_id": str(row["id"]),
        "name": row["name"],
        "product_ids": row["product_ids"],
        "remote_configs": row["remote_configs"],
        "is_archived": row["is_archived"],
        "variation_id": str(row["variation_id"]),
        "created_at": format_datetime(row["created_at"]),
        "updated_at": format_datetime(row["updated_at"]),
    }


# Management ---------------------------------------------------------------------


def create_paywall(rt: Runtime, app_id: UUID, body: PaywallIn) -> dict[str, Any]:
    now = rt.clock.now()
    row = {
        "id": uuid4(),
        "app_id": app_id,
        "name": body.name,
        "product_ids": [str(p) for p in body.product_ids],
        "remote_configs": body.remote_configs,
        "is_archived": False,
        "variation_id": uuid4(),
        "created_at": now,
        "updated_at": now,
    }
    with rt.db.write() as conn:
        _require_products(conn, app_id, body.product_ids)
        repository.insert_paywall(conn, row)
    return _paywall_row_out(row)


def _used_paywalls(conn: Connection, app_id: UUID) -> set[str]:
    """Paywalls a placement shows, directly or through an A/B test."""
    tests = {str(test["id"]): test for test in repository.app_ab_tests(conn, app_id)}
    used = set()
    for placement in repository.app_placements(conn, app_id):
        for target in placement["targets"]:
            if target.get("paywall_id"):
                used.add(target["paywall_id"])
            else:
                used.update(v["paywall_id"] for v in tests[target["ab_test_id"]]["variations"])
    return used


def update_paywall(rt: Runtime, app_id: UUID, paywall_id: UUID, body: PaywallPatch) -> dict[str, Any]:
    """Edit or archive a paywall; one that a placement shows cannot be archived."""
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    with rt.db.write() as conn:
        row = repository.find_paywall(conn, app_id, paywall_id)
        if row is None:
            raise paywall_not_found()
        if "product_ids" in changes:
            _require_products(conn, app_id, changes["product_ids"])
            changes["product_ids"] = [str(p) for p in changes["product_ids"]]
        if changes.get("is_archived") and str(paywall_id) in _used_paywalls(conn, app_id):
            raise bad_request(
                "paywall_in_use", NON_FIELD, "A placement shows this paywall; change the placement first."
            )
        changes["updated_at"] = rt.clock.now()
        repository.update_paywall(conn, paywall_id, changes)
        row.update(changes)
    return _paywall_row_out(row)


def list_paywalls_admin(rt: Runtime, app_id: UUID) -> list[dict[str, Any]]:
    with rt.db.read() as conn:
        return [_paywall_row_out(row) for row in repository.app_paywalls(conn, app_id)]


def create_audience(rt: Runtime, app_id: UUID, body: AudienceIn) -> dict[str, Any]:
    rules_json = [rule.model_dump() for rule in body.rules]
    with rt.db.write() as conn:
        if any(a["id"] == body.audience_id for a in repository.app_audiences(conn, app_id)):
            raise bad_request("audience_already_exists", "audience_id", f"`{body.audience_id}` exists already.")
        repository.insert_audience(
            conn, {"app_id": app_id, "id": body.audience_id, "rules": rules_json, "created_at": rt.clock.now()}
        )
    return {"audience_id": body.audience_id, "rules": rules_json}


def list_audiences(rt: Runtime, app_id: UUID) -> list[dict[str, Any]]:
    with rt.db.read() as conn:
        return [{"audience_id": a["id"], "rules": a["rules"]} for a in repository.app_audiences(conn, app_id)]


def delete_audience(rt: Runtime, app_id: UUID, audience_id: str) -> None:
    with rt.db.write() as conn:
        in_use = [
            p["id"]
            for p in repository.app_placements(conn, app_id)
            if any(t.get("audience_id") == audience_id for t in p["targets"])
        ]
        if in_use:
            raise bad_request("audience_in_use", NON_FIELD, f"Placements use it: {', '.join(in_use)}.")
        if not repository.delete_audience(conn, app_id, audience_id):
            raise ApiError.one(404, "audience_does_not_exist", None, "Audience not found")


def _ab_test_out(test: dict[str, Any]) -> dict[str, Any]:
    return {
        "ab_test_id": str(test["id"]),
        "name": test["name"],
        "variations": test["variations"],
        "created_at": format_datetime(test["created_at"]),
    }


def create_ab_test(rt: Runtime, app_id: UUID, body: AbTestIn) -> dict[str, Any]:
    test = {
        "id": uuid4(),
        "app_id": app_id,
        "name": body.name,
        "created_at": rt.clock.now(),
        "variations": [
            {"variation_id": str(uuid4()), "paywall_id": str(v.paywall_id), "weight": v.weight} for v in body.variations
        ],
    }
    with rt.db.write() as conn:
        live = {str(p["id"]) for p in repository.app_paywalls(conn, app_id) if not p["is_archived"]}
        missing = [v["paywall_id"] for v in test["variations"] if v["paywall_id"] not in live]
        if missing:
            raise bad_request("paywall_does_not_exist", "variations", f"No such live paywall: {', '.join(missing)}.")
        repository.insert_ab_test(conn, test)
    return _ab_test_out(test)


def list_ab_tests(rt: Runtime, app_id: UUID) -> list[dict[str, Any]]:
    with rt.db.read() as conn:
        return [_ab_test_out(test) for test in repository.app_ab_tests(conn, app_id)]


def set_placement(rt: Runtime, app_id: UUID, body: PlacementIn) -> dict[str, Any]:
    """Create or replace a placement's targets (in priority order)."""
    targets = [
        {
            "audience_id": t.audience_id,
            "paywall_id": str(t.paywall_id) if t.paywall_id else None,
            "ab_test_id": str(t.ab_test_id) if t.ab_test_id else None,
        }
        for t in body.targets
    ]
    now = rt.clock.now()
    with rt.db.write() as conn:
        audience_ids = {a["id"] for a in repository.app_audiences(conn, app_id)}
        live = {str(p["id"]) for p in repository.app_paywalls(conn, app_id) if not p["is_archived"]}
        tests = {str(t["id"]) for t in repository.app_ab_tests(conn, app_id)}
        for index, target in enumerate(targets):
            if target["audience_id"] is not None and target["audience_id"] not in audience_ids:
                raise bad_request("value_error", f"targets.{index}.audience_id", "No such audience.")
            if target["paywall_id"] is not None and target["paywall_id"] not in live:
                raise bad_request("value_error", f"targets.{index}.paywall_id", "No such live paywall.")
            if target["ab_test_id"] is not None and target["ab_test_id"] not in tests:
                raise bad_request("value_error", f"targets.{index}.ab_test_id", "No such A/B test.")
        repository.save_placement(
            conn, {"app_id": app_id, "id": body.placement_id, "targets": targets, "created_at": now, "updated_at": now}
        )
    return {"placement_id": body.placement_id, "targets": targets}


def list_placements(rt: Runtime, app_id: UUID) -> list[dict[str, Any]]:
    with rt.db.read() as conn:
        return [{"placement_id": p["id"], "targets": p["targets"]} for p in repository.app_placements(conn, app_id)]


# The contract: list, get, update -----------------------------------------------------


def _contexts(conn: Connection, app_id: UUID) -> dict[str, tuple[str, str, str]]:
    """paywall_id -> (placement_id, variation_id, ab_test_name) of the first placement showing it."""
    tests = {str(test["id"]): test for test in repository.app_ab_tests(conn, app_id)}
    contexts: dict[str, tuple[str, str, str]] = {}
    for placement in repository.app_placements(conn, app_id):
        for target in placement["targets"]:
            if target.get("paywall_id"):
                contexts.setdefault(target["paywall_id"], (placement["id"], None, None))
            else:
                test = tests[target["ab_test_id"]]
                for variation in test["variations"]:
                    contexts.setdefault(
                        variation["paywall_id"], (placement["id"], variation["variation_id"], test["name"])
                    )
    return contexts


def _contract_object(row, products, contexts, locale=None) -> dict[str, Any]:
    """The Paywall object of a paywall in the context of the first placement that shows it."""
    return _shown(row, products, *contexts.get(str(row["id"]), (None, None, None)), locale)


def _shown(row, products, placement_id, variation_id, test_name, locale) -> dict[str, Any]:
    """The Paywall object as shown at a placement (a variation of its own unless in an A/B test)."""
    return paywall_object(
        row,
        products,
        placement_id,
        variation_id or str(row["variation_id"]),
        test_name,
        rules.remote_config(row["remote_configs"], locale),
    )


def list_paywalls(
    rt: Runtime, app_id: UUID, page: int, page_size: int, search: str | None, ordering: str, is_archived: bool | None
) -> tuple[int, list[dict[str, Any]]]:
    with rt.db.read() as conn:
        rows = repository.app_paywalls(conn, app_id)
        contexts = _contexts(conn, app_id)
        products = catalog_service.products_by_id(conn, app_id)
    if search:
        rows = [row for row in rows if search.casefold() in row["name"].casefold()]
    if is_archived is not None:
        rows = [row for row in rows if row["is_archived"] == is_archived]
    field = ordering.lstrip("-")

    def state_index(row):
        return rules.ARCHIVED if row["is_archived"] else rules.LIVE if str(row["id"]) in contexts else rules.INACTIVE

    key = {
        "state_index": state_index,
        "name": lambda r: r["name"].casefold(),
        "created_at": lambda r: r["created_at"],
        "updated_at": lambda r: r["updated_at"],
    }[field]
    rows.sort(key=lambda row: (key(row), row["created_at"], str(row["id"])), reverse=ordering.startswith("-"))
    start = (page - 1) * page_size
    return len(rows), [_contract_object(row, products, contexts) for row in rows[start : start + page_size]]


def _paywall(conn: Connection, app_id: UUID, paywall_id: str) -> dict[str, Any]:
    try:
        parsed = UUID(paywall_id)
    except ValueError:
        raise paywall_not_found() from None
    row = repository.find_paywall(conn, app_id, parsed)
    if row is None:
        raise paywall_not_found()
    return row


def get_paywall(rt: Runtime, app_id: UUID, paywall_id: str) -> dict[str, Any]:
    with rt.db.read() as conn:
        row = _paywall(conn, app_id, paywall_id)
        return _contract_object(row, catalog_service.products_by_id(conn, app_id), _contexts(conn, app_id))


def replace_remote_config(rt: Runtime, app_id: UUID, paywall_id: str, body: RemoteConfigPut) -> dict[str, Any]:
    """The contract's PUT: the default-language remote config's data becomes the items sent."""
    with rt.db.write() as conn:
        row = _paywall(conn, app_id, paywall_id)
        configs = {**row["remote_configs"], DEFAULT_LANG: {item.key: item.value for item in body.remote_configs}}
        repository.update_paywall(conn, row["id"], {"remote_configs": configs, "updated_at": rt.clock.now()})
        row["remote_configs"] = configs
        return _contract_object(row, catalog_service.products_by_id(conn, app_id), _contexts(conn, app_id))


# A profile at a placement ---------------------------------------------------------------


def _facts(rt: Runtime, app_id: UUID, ref: ProfileRef) -> tuple[dict[str, Any], dict[str, Any]]:
    profile, installation = profiles_service.record(rt, app_id, ref)
    now = rt.clock.now()
    state = profiles_service.current_state(profile, now)
    moment = format_datetime(now)
    active = {
        level["access_level_id"]
        for level in state["access_levels"]
        if level["starts_at"] <= moment
        and (level["expires_at"] is None or moment < level["expires_at"] or level["is_in_grace_period"])
    }
    facts = {
        "store": profile["store"],
        "ip_country": profile["ip_country"],
        "store_country": profile["store_country"],
        "platform": (installation or {}).get("platform"),
        "custom_attributes": profile["custom_attributes"],
        "access_levels": active,
    }
    return profile, facts


def paywall_for_placement(
    rt: Runtime, app_id: UUID, ref: ProfileRef, placement_id: str, locale: str | None
) -> dict[str, Any]:
    """The paywall a profile sees at a placement: the first target whose audience it is in;
    for an A/B test, the profile's own stable variation."""
    profile, facts = _facts(rt, app_id, ref)
    with rt.db.read() as conn:
        placement = next((p for p in repository.app_placements(conn, app_id) if p["id"] == placement_id), None)
        if placement is None:
            raise ApiError.one(404, "placement_does_not_exist", None, "Placement not found")
        audiences = {a["id"]: a["rules"] for a in repository.app_audiences(conn, app_id)}
        target = rules.choose_target(placement["targets"], audiences, facts)
        if target is None:
            raise ApiError.one(404, "paywall_does_not_exist", None, "No paywall of this placement is for this profile")
        test_name = None
        if target["ab_test_id"]:
            test = next(t for t in repository.app_ab_tests(conn, app_id) if str(t["id"]) == target["ab_test_id"])
            variation = rules.assign_variation(str(test["id"]), str(profile["id"]), test["variations"])
            paywall_id, variation_id, test_name = variation["paywall_id"], variation["variation_id"], test["name"]
        else:
            paywall_id, variation_id = target["paywall_id"], None
        row = repository.find_paywall(conn, app_id, UUID(paywall_id))
        products = catalog_service.products_by_id(conn, app_id)
    return _shown(row, products, placement_id, variation_id, test_name, locale)


def record_view(rt: Runtime, app_id: UUID, ref: ProfileRef, placement_id: str, body: ViewIn) -> None:
    with rt.db.write() as conn:
        profile = profiles_service.lock(conn, app_id, ref)
        if repository.find_paywall(conn, app_id, body.paywall_id) is None:
            raise paywall_not_found()
        repository.insert_view(
            conn,
            {
                "id": uuid4(),
                "app_id": app_id,
                "profile_id": profile["id"],
                "placement_id": placement_id,
                "paywall_id": body.paywall_id,
                "variation_id": body.variation_id,
                "viewed_at": rt.clock.now(),
            },
        )


# Metrics ---------------------------------------------------------------------------------


def _variation_figures(conn: Connection, app_id: UUID) -> dict[str, dict[str, Any]]:
    rates = catalog_service.rates(conn, app_id)
    views = repository.views_by_variation(conn, app_id)
    figures: dict[str, dict[str, Any]] = {}
    for tx in repository.attributed_transactions(conn, app_id):
        entry = figures.setdefault(tx["variation_id"], {"purchases": 0, "purchasers": set(), "revenue": Decimal(0)})
        entry["purchases"] += 1
        entry["purchasers"].add(tx["profile_id"])
        if tx["refunded_at"] is None:
            entry["revenue"] += rates.to_usd(purchases_rules.charged(tx), tx["price_currency"])
    result = {}
    for variation in set(views) | set(figures):
        shown, viewers = views.get(variation, (0, 0))
        bought = figures.get(variation, {"purchases": 0, "purchasers": set(), "revenue": Decimal(0)})
        result[variation] = {
            "views": shown,
            "viewers": viewers,
            "purchases": bought["purchases"],
            "purchasers": len(bought["purchasers"]),
            "conversion": round(len(bought["purchasers"]) / viewers, 6) if viewers else None,
            "revenue_usd": float(bought["revenue"].quantize(Decimal("0.01"))),
        }
    return result


EMPTY = {"views": 0, "viewers": 0, "purchases": 0, "purchasers": 0, "conversion": None, "revenue_usd": 0.0}


def paywall_metrics(rt: Runtime, app_id: UUID) -> list[dict[str, Any]]:
    """Per paywall and variation: views, purchases, conversion (purchasers / viewers), revenue."""
    with rt.db.read() as conn:
        figures = _variation_figures(conn, app_id)
        rows = []
        for paywall in repository.app_paywalls(conn, app_id):
            rows.append(
                {
                    "paywall_id": str(paywall["id"]),
                    "paywall_name": paywall["name"],
                    "ab_test_name": None,
                    "variation_id": str(paywall["variation_id"]),
                    **figures.get(str(paywall["variation_id"]), EMPTY),
                }
            )
        for test in repository.app_ab_tests(conn, app_id):
            for variation in test["variations"]:
                rows.append(
                    {
                        "paywall_id": variation["paywall_id"],
                        "paywall_name": None,
                        "ab_test_name": test["name"],
                        "variation_id": variation["variation_id"],
                        **figures.get(variation["variation_id"], EMPTY),
                    }
                )
    return rows


def ab_test_metrics(rt: Runtime, app_id: UUID, ab_test_id: UUID) -> dict[str, Any]:
    """Each variation's figures, and the p-value of its conversion against the first variation's."""
    with rt.db.read() as conn:
        test = next((t for t in repository.app_ab_tests(conn, app_id) if t["id"] == ab_test_id), None)
        if test is None:
            raise ApiError.one(404, "ab_test_does_not_exist", None, "A/B test not found")
        figures = _variation_figures(conn, app_id)
    variations = [{**v, **figures.get(v["variation_id"], EMPTY)} for v in test["variations"]]
    control = variations[0]
    for variation in variations:
        variation["p_value"] = (
            None
            if variation is control
            else rules.z_test(control["purchasers"], control["viewers"], variation["purchasers"], variation["viewers"])
        )
    return {"ab_test_id": str(test["id"]), "name": test["name"], "variations": variations}
