"""Paywall use cases: management, the contract's list/get/update, choosing a
placement's paywall for a profile, views and metrics."""

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import Connection

from subledger.catalog import service as catalog_service
from subledger.core.dates import format_datetime
from subledger.core.errors import NON_FIELD, ApiError, bad_request, profile_not_found
from subledger.core.profile_ref import ProfileRef
from subledger.core.runtime import Runtime
from subledger.metrics import rules as metrics_rules
from subledger.paywalls import repository, rules
from subledger.paywalls.schemas import (
    AbTestIn,
    AudienceIn,
    PaywallIn,
    PaywallPatch,
    PlacementIn,
    RemoteConfigPut,
    by_locale,
    paywall_list_item,
    paywall_object,
    placement_paywall_object,
)
from subledger.profiles import service as profiles_service
from subledger.purchases import service as purchases_service


def paywall_not_found() -> ApiError:
    return ApiError.one(404, "paywall_does_not_exist", None, "Paywall not found")


def _require_products(conn: Connection, app_id: UUID, product_ids: list[UUID]) -> None:
    known = catalog_service.products_by_id(conn, app_id)
    unknown = [str(pid) for pid in product_ids if str(pid) not in known]
    if unknown:
        raise bad_request("value_error", "product_ids", f"Unknown products: {', '.join(unknown)}.")


def _admin_object(row: dict[str, Any], products: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The contract's Paywall object, and the variation it is shown as outside an A/B test."""
    return {**paywall_object(row, products), "variation_id": str(row["variation_id"])}


# Management ---------------------------------------------------------------------


def create_paywall(rt: Runtime, app_id: UUID, body: PaywallIn) -> dict[str, Any]:
    now = rt.clock.now()
    row = {
        "id": uuid4(),
        "app_id": app_id,
        "title": body.title,
        "product_ids": [str(p) for p in body.product_ids],
        "remote_configs": by_locale(body.remote_configs),
        "state": rules.DRAFT,
        "web_purchase_url": body.web_purchase_url,
        "variation_id": uuid4(),
        "created_at": now,
        "updated_at": now,
    }
    with rt.db.write() as conn:
        _require_products(conn, app_id, body.product_ids)
        repository.insert_paywall(conn, row)
        return _admin_object(row, catalog_service.products_by_id(conn, app_id))


def _shown_paywalls(conn: Connection, app_id: UUID) -> set[str]:
    """Paywalls a placement shows, directly or through an A/B test."""
    tests = {str(test["id"]): test for test in repository.app_ab_tests(conn, app_id)}
    shown = set()
    for placement in repository.app_placements(conn, app_id):
        for target in placement["targets"]:
            if target.get("paywall_id"):
                shown.add(target["paywall_id"])
            else:
                shown.update(v["paywall_id"] for v in tests[target["ab_test_id"]]["variations"])
    return shown


def update_paywall(rt: Runtime, app_id: UUID, paywall_id: UUID, body: PaywallPatch) -> dict[str, Any]:
    """Edit a paywall, or set its state: a live one (a placement shows it) keeps being live."""
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    with rt.db.write() as conn:
        row = repository.find_paywall(conn, app_id, paywall_id)
        if row is None:
            raise paywall_not_found()
        if "product_ids" in changes:
            _require_products(conn, app_id, changes["product_ids"])
            changes["product_ids"] = [str(p) for p in changes["product_ids"]]
        if "remote_configs" in changes:
            changes["remote_configs"] = by_locale(changes["remote_configs"])
        if "state" in changes and changes["state"] != row["state"] and row["state"] == rules.LIVE:
            raise bad_request(
                "paywall_in_use", NON_FIELD, "A placement shows this paywall; change the placement first."
            )
        changes["updated_at"] = rt.clock.now()
        repository.update_paywall(conn, paywall_id, changes)
        row.update(changes)
        return _admin_object(row, catalog_service.products_by_id(conn, app_id))


def list_paywalls_admin(rt: Runtime, app_id: UUID) -> list[dict[str, Any]]:
    with rt.db.read() as conn:
        products = catalog_service.products_by_id(conn, app_id)
        return [_admin_object(row, products) for row in repository.app_paywalls(conn, app_id)]


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
    variations: list[dict[str, Any]] = [
        {"variation_id": str(uuid4()), "paywall_id": str(v.paywall_id), "weight": v.weight} for v in body.variations
    ]
    test = {
        "id": uuid4(),
        "app_id": app_id,
        "name": body.name,
        "created_at": rt.clock.now(),
        "variations": variations,
    }
    with rt.db.write() as conn:
        usable = _usable_paywalls(conn, app_id)
        missing = [v["paywall_id"] for v in variations if v["paywall_id"] not in usable]
        if missing:
            raise bad_request(
                "paywall_does_not_exist", "variations", f"No such paywall, or archived: {', '.join(missing)}."
            )
        repository.insert_ab_test(conn, test)
    return _ab_test_out(test)


def _usable_paywalls(conn: Connection, app_id: UUID) -> set[str]:
    """The paywalls a placement or an A/B test may show: those not archived."""
    return {str(p["id"]) for p in repository.app_paywalls(conn, app_id) if p["state"] != rules.ARCHIVED}


def list_ab_tests(rt: Runtime, app_id: UUID) -> list[dict[str, Any]]:
    with rt.db.read() as conn:
        return [_ab_test_out(test) for test in repository.app_ab_tests(conn, app_id)]


def set_placement(rt: Runtime, app_id: UUID, body: PlacementIn) -> dict[str, Any]:
    """Create or replace a placement's targets (in priority order); the paywalls it starts or
    stops showing become live, or inactive once no placement shows them."""
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
        usable = _usable_paywalls(conn, app_id)
        tests = {str(t["id"]) for t in repository.app_ab_tests(conn, app_id)}
        for index, target in enumerate(targets):
            if target["audience_id"] is not None and target["audience_id"] not in audience_ids:
                raise bad_request("value_error", f"targets.{index}.audience_id", "No such audience.")
            if target["paywall_id"] is not None and target["paywall_id"] not in usable:
                raise bad_request("value_error", f"targets.{index}.paywall_id", "No such paywall, or archived.")
            if target["ab_test_id"] is not None and target["ab_test_id"] not in tests:
                raise bad_request("value_error", f"targets.{index}.ab_test_id", "No such A/B test.")
        repository.save_placement(
            conn, {"app_id": app_id, "id": body.placement_id, "targets": targets, "created_at": now, "updated_at": now}
        )
        states = {str(p["id"]): p["state"] for p in repository.app_paywalls(conn, app_id)}
        for paywall_id, state in rules.states_after_placing(states, _shown_paywalls(conn, app_id)).items():
            repository.update_paywall(conn, UUID(paywall_id), {"state": state, "updated_at": now})
    return {"placement_id": body.placement_id, "targets": targets}


def list_placements(rt: Runtime, app_id: UUID) -> list[dict[str, Any]]:
    with rt.db.read() as conn:
        return [{"placement_id": p["id"], "targets": p["targets"]} for p in repository.app_placements(conn, app_id)]


EVERYONE = "All Users"  # the audience of a target that names none, as the reference names it


def placement_export(rt: Runtime, app_id: UUID) -> list[dict[str, Any]]:
    """Every placement's targets in priority order, one row per paywall each can show (every
    variation's of an A/B test), in the Export Analytics API's PlacementInfoResponse shape.
    An audience is its own segment here, and no A/B test spans placements."""
    with rt.db.lagging_read() as conn:
        placements = repository.app_placements(conn, app_id)
        tests = {str(test["id"]): test for test in repository.app_ab_tests(conn, app_id)}
        titles = {str(paywall["id"]): paywall["title"] for paywall in repository.app_paywalls(conn, app_id)}
    rows = []
    for placement in placements:
        for target in placement["targets"]:
            audience = target["audience_id"] or EVERYONE
            test = tests.get(target["ab_test_id"] or "")
            shown = [variation["paywall_id"] for variation in test["variations"]] if test else [target["paywall_id"]]
            for paywall_id in shown:
                rows.append(
                    {
                        "developer_id": placement["id"],
                        "placement_name": placement["id"],
                        "audience_name": audience,
                        "segment_name": audience,
                        "cross_placement_ab_test_name": None,
                        "ab_test_name": test["name"] if test else None,
                        "paywall_name": titles.get(str(paywall_id), ""),
                    }
                )
    return rows


# The contract: list, get, update -----------------------------------------------------


def list_paywalls(rt: Runtime, app_id: UUID, page: int, page_size: int) -> tuple[int, list[dict[str, Any]]]:
    """The app's paywalls, oldest first: how many there are, and those of the page."""
    with rt.db.read() as conn:
        count = repository.count_paywalls(conn, app_id)
        rows = repository.paywalls_page(conn, app_id, (page - 1) * page_size, page_size) if count else []
        products = catalog_service.products_by_id(conn, app_id) if rows else {}
    return count, [paywall_list_item(row, products) for row in rows]


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
        return paywall_object(_paywall(conn, app_id, paywall_id), catalog_service.products_by_id(conn, app_id))


def replace_remote_configs(rt: Runtime, app_id: UUID, paywall_id: str, body: RemoteConfigPut) -> dict[str, Any]:
    """The contract's PUT: the remote configs sent replace every locale's."""
    if body.remote_configs is None:
        raise bad_request("validation_error", "remote_configs", "At least one field must be provided")
    with rt.db.write() as conn:
        row = _paywall(conn, app_id, paywall_id)
        changes = {"remote_configs": by_locale(body.remote_configs), "updated_at": rt.clock.now()}
        repository.update_paywall(conn, row["id"], changes)
        row.update(changes)
        return paywall_object(row, catalog_service.products_by_id(conn, app_id))


# A profile at a placement ---------------------------------------------------------------


def _facts(rt: Runtime, profile: dict[str, Any], installation: dict[str, Any] | None) -> dict[str, Any]:
    """What audience rules look at: the profile's properties, attributes, active access levels,
    latest attribution."""
    return {
        "store": profile["store"],
        "ip_country": profile["ip_country"],
        "store_country": profile["store_country"],
        "platform": (installation or {}).get("platform"),
        "custom_attributes": profile["custom_attributes"],
        "access_levels": set(profiles_service.active_access_level_ids(profile, rt.clock.now())),
        "attribution": profiles_service.latest_attribution(profile),
    }


def paywall_for_placement(
    rt: Runtime,
    app_id: UUID,
    ref: ProfileRef,
    placement_id: str,
    locale: str | None,
    store: str | None = None,
    missing: Callable[[], ApiError] = profile_not_found,
) -> dict[str, Any]:
    """The paywall a profile sees at a placement: the first target whose audience it is in; for an
    A/B test, the profile's own stable variation. With ``store``, the products of that store alone;
    each product's offer eligibility is the profile's."""
    profile, installation = profiles_service.record(rt, app_id, ref, missing)
    facts = _facts(rt, profile, installation)
    with rt.db.read() as conn:
        placement = next((p for p in repository.app_placements(conn, app_id) if p["id"] == placement_id), None)
        if placement is None:
            raise ApiError.one(404, "placement_does_not_exist", "placement_id", "Placement not found")
        audiences = {a["id"]: a["rules"] for a in repository.app_audiences(conn, app_id)}
        target = rules.choose_target(placement["targets"], audiences, facts)
        if target is None:
            raise ApiError.one(
                404, "paywall_does_not_exist", "placement_id", "No paywall of this placement is for this profile"
            )
        test_name = None
        if target["ab_test_id"]:
            test = next(t for t in repository.app_ab_tests(conn, app_id) if str(t["id"]) == target["ab_test_id"])
            variation = rules.assign_variation(str(test["id"]), str(profile["id"]), test["variations"])
            paywall_id, variation_id, test_name = variation["paywall_id"], variation["variation_id"], test["name"]
        else:
            paywall_id, variation_id = target["paywall_id"], None
        row = repository.find_paywall(conn, app_id, UUID(paywall_id))
        if row is None:  # a placement names only the app's paywalls, which are archived, never deleted
            raise ApiError.one(404, "paywall_does_not_exist", "placement_id", "The placement's paywall is gone")
        products = catalog_service.products_by_id(conn, app_id)
        bought = purchases_service.products_bought(conn, profile["id"])
    if store is not None:
        products = {key: product for key, product in products.items() if product["store"] == store}
    return placement_paywall_object(
        row,
        products,
        bought,
        placement_id,
        variation_id or str(row["variation_id"]),
        test_name,
        rules.remote_config(row["remote_configs"], locale),
    )


def variation_not_found() -> ApiError:
    return ApiError.one(404, "variation_id_not_found", "variation_id", "Variation not found")


def _variation_paywall(conn: Connection, app_id: UUID, variation_id: UUID) -> UUID | None:
    """The paywall a variation shows: a paywall's own, or one of an A/B test's; None when unknown."""
    wanted = str(variation_id)
    for paywall in repository.app_paywalls(conn, app_id):
        if paywall["variation_id"] == variation_id:
            found: UUID = paywall["id"]
            return found
    for test in repository.app_ab_tests(conn, app_id):
        for variation in test["variations"]:
            if variation["variation_id"] == wanted:
                return UUID(variation["paywall_id"])
    return None


def record_view(
    rt: Runtime,
    app_id: UUID,
    ref: ProfileRef,
    variation_id: UUID,
    viewed_at: datetime | None = None,
    store: str | None = None,
    placement_id: str | None = None,
    paywall_id: UUID | None = None,
    missing: Callable[[], ApiError] = profile_not_found,
) -> None:
    """Record that a profile saw a variation of a paywall (at ``viewed_at``, by default now): the
    views of the paywall metrics and A/B tests. ``paywall_id``, when given, must be the one the
    variation shows."""
    with rt.db.write() as conn:
        profile = profiles_service.load(conn, app_id, ref, for_update=True, missing=missing)
        shown = _variation_paywall(conn, app_id, variation_id)
        if shown is None or paywall_id not in (None, shown):
            raise variation_not_found()
        repository.insert_view(
            conn,
            {
                "id": uuid4(),
                "app_id": app_id,
                "profile_id": profile["id"],
                "placement_id": placement_id,
                "paywall_id": shown,
                "variation_id": variation_id,
                "store": store,
                "viewed_at": viewed_at or rt.clock.now(),
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
            entry["revenue"] += rates.to_usd(metrics_rules.charged(tx), tx["price_currency"])
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
        return _paywall_rows(conn, app_id, _variation_figures(conn, app_id))


def _paywall_rows(conn: Connection, app_id: UUID, figures: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """``paywall_metrics``'s rows, from the figures of every variation."""
    rows = []
    for paywall in repository.app_paywalls(conn, app_id):
        rows.append(
            {
                "paywall_id": str(paywall["id"]),
                "paywall_name": paywall["title"],
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


def _test_figures(test: dict[str, Any], figures: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """An A/B test's variations with their figures, and the p-value of each one's conversion
    against the first variation's."""
    variations = [{**v, **figures.get(v["variation_id"], EMPTY)} for v in test["variations"]]
    control = variations[0]
    for variation in variations:
        variation["p_value"] = (
            None
            if variation is control
            else rules.z_test(control["purchasers"], control["viewers"], variation["purchasers"], variation["viewers"])
        )
    return {"ab_test_id": str(test["id"]), "name": test["name"], "variations": variations}


def ab_test_metrics(rt: Runtime, app_id: UUID, ab_test_id: UUID) -> dict[str, Any]:
    """Each variation's figures, and the p-value of its conversion against the first variation's."""
    with rt.db.read() as conn:
        test = next((t for t in repository.app_ab_tests(conn, app_id) if t["id"] == ab_test_id), None)
        if test is None:
            raise ApiError.one(404, "ab_test_does_not_exist", None, "A/B test not found")
        figures = _variation_figures(conn, app_id)
    return _test_figures(test, figures)


def metrics_and_experiments(rt: Runtime, app_id: UUID) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``paywall_metrics``, and every A/B test as ``ab_test_metrics`` gives it (newest first), from one
    reading of the views and purchases."""
    with rt.db.read() as conn:
        tests = repository.app_ab_tests(conn, app_id)
        figures = _variation_figures(conn, app_id)
        rows = _paywall_rows(conn, app_id, figures)
    ordered = sorted(tests, key=lambda test: test["created_at"], reverse=True)
    return rows, [
        {**_test_figures(test, figures), "created_at": format_datetime(test["created_at"])} for test in ordered
    ]
