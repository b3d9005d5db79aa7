"""Paywalls, audiences, A/B tests and placements."""

from typing import IO, Any
from uuid import UUID

import click
import orjson

from subledger.cli.common import APP_OPTION, checked, echo_json, json_option, load_runtime
from subledger.core.fields import whole_number
from subledger.paywalls import service as paywalls_service
from subledger.paywalls.schemas import AbTestIn, AudienceIn, PaywallIn, PaywallPatch, PlacementIn


@click.group()
def paywalls() -> None:
    """Paywalls: products in order and remote configs per locale."""


def _remote_configs(file: IO[str]) -> list[dict[str, str]]:
    """A ``--remote-config`` file ({"en": {...}, "fr": {...}}) as the API takes remote configs."""
    configs = json_option(file.read(), "the remote config")
    if not isinstance(configs, dict):
        raise click.ClickException('the remote config must be a JSON object: {"en": {...}, "fr": {...}}')
    return [{"locale": locale, "data": orjson.dumps(data).decode()} for locale, data in configs.items()]


REMOTE_CONFIG_HELP = 'A JSON file of every locale\'s remote config: {"en": {...}, "fr": {...}}.'


@paywalls.command("create")
@APP_OPTION
@click.option("--title", required=True)
@click.option("--product", "product_ids", multiple=True, help="A product_id (repeat, in display order).")
@click.option("--remote-config", "remote_config", type=click.File("r"), default=None, help=REMOTE_CONFIG_HELP)
@click.option("--web-purchase-url", default=None, help="Where the app opens a web checkout for this paywall.")
def paywalls_create(
    app_id: UUID,
    title: str,
    product_ids: tuple[str, ...],
    remote_config: IO[str] | None,
    web_purchase_url: str | None,
) -> None:
    body: dict[str, Any] = {"title": title, "product_ids": list(product_ids), "web_purchase_url": web_purchase_url}
    if remote_config:
        body["remote_configs"] = _remote_configs(remote_config)
    echo_json(checked(paywalls_service.create_paywall, load_runtime(), app_id, checked(PaywallIn.model_validate, body)))


@paywalls.command("list")
@APP_OPTION
def paywalls_list(app_id: UUID) -> None:
    echo_json(paywalls_service.list_paywalls_admin(load_runtime(), app_id))


@paywalls.command("update")
@APP_OPTION
@click.option("--paywall", "paywall_id", required=True, type=click.UUID)
@click.option("--title", default=None)
@click.option("--product", "product_ids", multiple=True, help="Replaces the products (repeat, in display order).")
@click.option(
    "--remote-config", "remote_config", type=click.File("r"), default=None, help="Replaces them: " + REMOTE_CONFIG_HELP
)
@click.option("--web-purchase-url", default=None, help="Where the app opens a web checkout; '' removes it.")
@click.option(
    "--state",
    type=click.Choice(["draft", "inactive", "archived"]),
    default=None,
    help="A paywall is live while a placement shows it; the other states are set here.",
)
def paywalls_update(
    app_id: UUID,
    paywall_id: UUID,
    title: str | None,
    product_ids: tuple[str, ...],
    remote_config: IO[str] | None,
    web_purchase_url: str | None,
    state: str | None,
) -> None:
    """Change a paywall's title, products, remote configs, web purchase URL or state (what is not given stays)."""
    changes: dict[str, Any] = {
        name: value for name, value in {"title": title, "state": state}.items() if value is not None
    }
    if product_ids:
        changes["product_ids"] = list(product_ids)
    if remote_config:
        changes["remote_configs"] = _remote_configs(remote_config)
    if web_purchase_url is not None:
        changes["web_purchase_url"] = web_purchase_url or None
    body = checked(PaywallPatch.model_validate, changes)
    echo_json(checked(paywalls_service.update_paywall, load_runtime(), app_id, paywall_id, body))


@paywalls.command("archive")
@APP_OPTION
@click.option("--paywall", "paywall_id", required=True, type=click.UUID)
def paywalls_archive(app_id: UUID, paywall_id: UUID) -> None:
    """Archive a paywall no placement shows."""
    body = PaywallPatch.model_validate({"state": "archived"})
    echo_json(checked(paywalls_service.update_paywall, load_runtime(), app_id, paywall_id, body))


@paywalls.command("metrics")
@APP_OPTION
def paywalls_metrics(app_id: UUID) -> None:
    """Views, purchases, conversion and revenue per paywall and variation."""
    echo_json(paywalls_service.paywall_metrics(load_runtime(), app_id))


@click.group()
def audiences() -> None:
    """Audiences: rules over a profile's attributes, store, country, platform and access levels."""


@audiences.command("create")
@APP_OPTION
@click.option("--id", "audience_id", required=True)
@click.option("--rules", required=True, help='JSON: [{"field": "ip_country", "op": "eq", "value": "FR"}, ...]')
def audiences_create(app_id: UUID, audience_id: str, rules: str) -> None:
    body = checked(AudienceIn.model_validate, {"audience_id": audience_id, "rules": json_option(rules, "--rules")})
    echo_json(checked(paywalls_service.create_audience, load_runtime(), app_id, body))


@audiences.command("list")
@APP_OPTION
def audiences_list(app_id: UUID) -> None:
    echo_json(paywalls_service.list_audiences(load_runtime(), app_id))


@audiences.command("delete")
@APP_OPTION
@click.option("--id", "audience_id", required=True)
def audiences_delete(app_id: UUID, audience_id: str) -> None:
    checked(paywalls_service.delete_audience, load_runtime(), app_id, audience_id)


@click.group("ab-tests")
def ab_tests() -> None:
    """A/B tests of paywalls with weights."""


@ab_tests.command("create")
@APP_OPTION
@click.option("--name", required=True)
@click.option("--variation", "variations", multiple=True, required=True, help="PAYWALL_ID:WEIGHT (repeat).")
def ab_tests_create(app_id: UUID, name: str, variations: tuple[str, ...]) -> None:
    parsed = []
    for variation in variations:
        paywall_id, _, weight = variation.partition(":")
        number = whole_number(weight, 0, 2**31)  # anything else goes on as text, for the model to refuse
        parsed.append({"paywall_id": paywall_id, "weight": weight if number is None else number})
    body = checked(AbTestIn.model_validate, {"name": name, "variations": parsed})
    echo_json(checked(paywalls_service.create_ab_test, load_runtime(), app_id, body))


@ab_tests.command("list")
@APP_OPTION
def ab_tests_list(app_id: UUID) -> None:
    echo_json(paywalls_service.list_ab_tests(load_runtime(), app_id))


@ab_tests.command("metrics")
@APP_OPTION
@click.option("--test", "ab_test_id", required=True, type=click.UUID)
def ab_tests_metrics(app_id: UUID, ab_test_id: UUID) -> None:
    """Each variation's figures and the p-value of its conversion against the first variation's."""
    echo_json(checked(paywalls_service.ab_test_metrics, load_runtime(), app_id, ab_test_id))


@click.group()
def placements() -> None:
    """Placements: where the app shows a paywall, with targets in priority order."""


@placements.command("set")
@APP_OPTION
@click.option("--id", "placement_id", required=True)
@click.option(
    "--target",
    "targets",
    multiple=True,
    help='JSON, in priority order (repeat): {"audience_id": "france", "paywall_id": "..."} or {"ab_test_id": "..."}.',
)
def placements_set(app_id: UUID, placement_id: str, targets: tuple[str, ...]) -> None:
    body = checked(
        PlacementIn.model_validate,
        {"placement_id": placement_id, "targets": [json_option(t, "--target") for t in targets]},
    )
    echo_json(checked(paywalls_service.set_placement, load_runtime(), app_id, body))


@placements.command("list")
@APP_OPTION
def placements_list(app_id: UUID) -> None:
    echo_json(paywalls_service.list_placements(load_runtime(), app_id))
