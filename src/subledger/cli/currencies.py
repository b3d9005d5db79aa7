"""Virtual currencies."""

from collections.abc import Callable
from typing import Any, TypeVar
from uuid import UUID

import click

from subledger.cli.common import APP_OPTION, echo_json, find_product_id, load_runtime
from subledger.currencies import rules as currencies_rules
from subledger.currencies import service as currencies_service

T = TypeVar("T")


@click.group()
def currencies() -> None:
    """Virtual currencies (coins, credits, gems): each profile's balances, changed through the API's
    vc/transactions and by purchases of products that credit them. The API answers 403 until they
    are turned on for the app."""


def _currency_call(function: Callable[..., T], *args: Any) -> T:
    try:
        return function(*args)
    except currencies_rules.CurrencyError as error:
        raise click.ClickException(str(error)) from None


@currencies.command("configure")
@APP_OPTION
@click.option("--on/--off", "enabled", required=True, help="Turn the API's virtual currency endpoints on or off.")
def currencies_configure(app_id: UUID, enabled: bool) -> None:
    echo_json(currencies_service.enable(load_runtime(), app_id, enabled))


@currencies.command("list")
@APP_OPTION
def currencies_list(app_id: UUID) -> None:
    """Whether the endpoints are on, and the app's currencies."""
    echo_json(currencies_service.settings(load_runtime(), app_id))


@currencies.command("add")
@APP_OPTION
@click.argument("code")
@click.argument("name")
def currencies_add(app_id: UUID, code: str, name: str) -> None:
    """Add a currency: CODE is what the API names it (1 to 30 letters, digits, underscores)."""
    echo_json(_currency_call(currencies_service.add_currency, load_runtime(), app_id, code, name))


@currencies.command("rename")
@APP_OPTION
@click.argument("code")
@click.argument("name")
def currencies_rename(app_id: UUID, code: str, name: str) -> None:
    echo_json(_currency_call(currencies_service.rename_currency, load_runtime(), app_id, code, name))


@currencies.command("delete")
@APP_OPTION
@click.argument("code")
def currencies_delete(app_id: UUID, code: str) -> None:
    """Delete a currency that no transaction and no product has used."""
    _currency_call(currencies_service.remove_currency, load_runtime(), app_id, code)


def _grant(_context: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> list[tuple[str, int]]:
    try:
        return currencies_rules.parsed_grants(values)
    except currencies_rules.CurrencyError as error:
        raise click.BadParameter(str(error)) from None


@currencies.command("grant")
@APP_OPTION
@click.option("--product", required=True, help="The store's product id, or the product_id from `products list`.")
@click.option("--store", default=None, help="The store, when products of several stores have that id.")
@click.argument("grants", nargs=-1, callback=_grant, metavar="[CODE=AMOUNT]...")
def currencies_grant(app_id: UUID, product: str, store: str | None, grants: list[tuple[str, int]]) -> None:
    """What buying a product credits, each purchase and renewal once (none given: nothing). A refund
    takes it back, as far as the balance allows."""
    runtime = load_runtime()
    product_id = find_product_id(runtime, app_id, product, store)
    echo_json(_currency_call(currencies_service.set_product_grants, runtime, app_id, product_id, grants))
