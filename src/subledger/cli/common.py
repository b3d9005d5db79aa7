"""What the commands share: the runtime from the environment, JSON output, contract errors as
command errors, and the options that name an app or a product."""

import time
from collections.abc import Callable
from typing import Any, TypeVar
from uuid import UUID

import click
import orjson
from pydantic import ValidationError

from subledger.apps import service as apps_service
from subledger.catalog import service as catalog_service
from subledger.config import Settings
from subledger.core import strict_json
from subledger.core.db import NotMigrated, unavailable
from subledger.core.errors import ApiError, from_validation_errors
from subledger.core.runtime import Runtime

T = TypeVar("T")

# Bounds of the options that count back or forward in time: well inside datetime's years 1 to 9999.
CENTURY_DAYS = 36_500
CENTURY_SECONDS = CENTURY_DAYS * 86_400


def echo_json(value: Any) -> None:
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


def checked(call: Callable[..., T], *args: Any) -> T:
    """Run a service call; its contract errors and invalid input become a CLI error."""
    try:
        try:
            return call(*args)
        except ValidationError as invalid:
            raise from_validation_errors(invalid.errors()) from None
    except ApiError as error:
        raise click.ClickException(error.summary()) from None


def settings_from_env() -> Settings:
    """The settings from the environment; a bad value is an error that names its variable."""
    try:
        return Settings()
    except ValidationError as invalid:
        problems = [f"SUBLEDGER_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in invalid.errors()]
        raise click.ClickException("; ".join(problems)) from None


def not_migrated(runtime: Runtime, exc: NotMigrated) -> click.ClickException:
    message = str(exc)
    if earlier := runtime.settings.earlier_database():
        message += (
            f" A database made by an earlier version is at {earlier}: to keep using it, set "
            f"SUBLEDGER_DATA_DIR={earlier.parent} (or move its files into {runtime.settings.data_dir})."
        )
    return click.ClickException(message)


def load_runtime(require_migrated: bool = True) -> Runtime:
    runtime = Runtime.from_settings(settings_from_env())
    if require_migrated:
        try:
            runtime.db.require_migrated()
        except NotMigrated as exc:
            raise not_migrated(runtime, exc) from None
    return runtime


def runtime_when_reachable() -> Runtime:
    """The runtime once its database answers: a long-running process started while the database
    restarts or is failed over waits for it (every two seconds) rather than exit."""
    runtime = Runtime.from_settings(settings_from_env())
    while True:
        try:
            runtime.db.require_migrated()
            return runtime
        except NotMigrated as exc:
            raise not_migrated(runtime, exc) from None
        except Exception as error:
            if not unavailable(error):
                raise
            click.echo(f"the database {runtime.db.location} does not answer ({error}); trying again", err=True)
            time.sleep(2)


def known_app(runtime: Runtime, app_id: UUID) -> None:
    if not apps_service.app_exists(runtime.db, app_id):
        raise click.ClickException(f"no app with id {app_id}")


def _existing_app(_context: click.Context, _param: click.Parameter, app_id: UUID) -> UUID:
    """``--app`` names an app there is: every command says so at once, rather than failing on
    a database constraint or printing nothing."""
    known_app(load_runtime(), app_id)
    return app_id


APP_OPTION = click.option(
    "--app", "app_id", required=True, type=click.UUID, callback=_existing_app, help="The app's id."
)


def find_product_id(runtime: Runtime, app_id: UUID, product: str, store: str | None) -> UUID:
    """The product named by its store product id (or product_id), in ``store`` when given."""
    matching = [
        row
        for row in catalog_service.list_products(runtime, app_id)
        if product in (row["product_id"], row["store_product_id"]) and store in (None, row["store"])
    ]
    if not matching:
        raise click.ClickException(f"no product {product!r} in app {app_id}")
    if len(matching) > 1:
        stores = ", ".join(sorted({row["store"] for row in matching}))
        raise click.ClickException(f"{product!r} is a product of several stores ({stores}): give --store")
    return UUID(matching[0]["product_id"])


def json_option(value: str | None, what: str) -> Any:
    try:
        return None if value is None else strict_json.loads(value)
    except orjson.JSONDecodeError as exc:
        raise click.ClickException(f"{what} is not JSON: {exc}") from None
