"""The catalog: access levels and products."""

from typing import Any
from uuid import UUID

import click

from subledger.catalog import service as catalog_service
from subledger.catalog.schemas import AccessLevelIn, ProductIn
from subledger.cli.common import APP_OPTION, checked, echo_json, find_product_id, load_runtime
from subledger.purchases import service as purchases_service


@click.group("access-levels")
def access_levels() -> None:
    """Access levels an app's products unlock (premium, ...)."""


@access_levels.command("create")
@APP_OPTION
@click.option("--id", "level_id", required=True, help="The access level id, e.g. premium.")
def access_levels_create(app_id: UUID, level_id: str) -> None:
    """Create an access level."""
    body = checked(AccessLevelIn.model_validate, {"access_level_id": level_id})
    echo_json(checked(catalog_service.create_access_level, load_runtime(), app_id, body))


@access_levels.command("list")
@APP_OPTION
def access_levels_list(app_id: UUID) -> None:
    echo_json(catalog_service.list_access_levels(load_runtime(), app_id))


@access_levels.command("delete")
@APP_OPTION
@click.option("--id", "level_id", required=True)
def access_levels_delete(app_id: UUID, level_id: str) -> None:
    """Delete an access level that no product unlocks and no profile was granted."""
    checked(catalog_service.delete_access_level, load_runtime(), app_id, level_id)


@click.group()
def products() -> None:
    """Store products and the access level each unlocks."""


@products.command("create")
@APP_OPTION
@click.option("--store", required=True, help="app_store, play_store, stripe or a custom store id.")
@click.option("--product-id", "store_product_id", required=True, help="The store's product id.")
@click.option("--base-plan", "store_base_plan_id", default=None, help="Only this base plan (Google Play).")
@click.option("--access-level", "access_level_id", default=None, help="The access level it unlocks.")
@click.option("--period", required=True, help="ISO 8601 duration (P1W, P1M, P1Y, ...) or lifetime.")
@click.option("--consumable", "is_consumable", is_flag=True, help="Bought again and again; unlocks nothing.")
@click.option("--title", default=None)
def products_create(app_id: UUID, **fields: Any) -> None:
    """Create a product; profiles that already bought it get its access level."""
    body = checked(ProductIn.model_validate, fields)
    echo_json(checked(purchases_service.add_product, load_runtime(), app_id, body))


@products.command("list")
@APP_OPTION
def products_list(app_id: UUID) -> None:
    echo_json(catalog_service.list_products(load_runtime(), app_id))


@products.command("delete")
@APP_OPTION
@click.option("--product", required=True, help="The store's product id, or the product_id from `products list`.")
@click.option("--store", default=None, help="The store, when products of several stores have that id.")
def products_delete(app_id: UUID, product: str, store: str | None) -> None:
    runtime = load_runtime()
    checked(purchases_service.remove_product, runtime, app_id, find_product_id(runtime, app_id, product, store))
