"""The ``subledger`` command: serve, migrate, apps and keys."""

import asyncio
import csv
import importlib
import io
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import click
import orjson
from pydantic import ValidationError

from subledger.analytics import transfer
from subledger.catalog.schemas import AccessLevelIn, ProductIn
from subledger.config import DATABASE_FILE, Settings
from subledger.core import strict_json
from subledger.core.dates import parse_datetime
from subledger.core.db import NotMigrated, unavailable
from subledger.core.errors import ApiError, from_validation_errors
from subledger.core.fields import whole_number
from subledger.core.runtime import DELIVERIES_IN_FLIGHT, Runtime
from subledger.core.secrets import SECRET_KEY_FILE
from subledger.currencies import rules as currencies_rules
from subledger.events.rules import EVENT_TYPES, MAX_CURSOR
from subledger.events.schemas import EndpointIn
from subledger.paywalls.schemas import AbTestIn, AudienceIn, PaywallIn, PaywallPatch, PlacementIn
from subledger.refund_saver.rules import APP_PREFERENCES, CONSENT_POLICIES
from subledger.refund_saver.schemas import AppSettingsIn
from subledger.stores.rules import CONNECTED_STORES


class _Feature:
    """A feature's module, imported when a command first uses one of its names.

    Between them the features import the stores' libraries, FastAPI and more: importing
    all of them took a second or more of every command, which uses one or two.
    """

    def __init__(self, module: str):
        self._module = module

    def __getattr__(self, name: str):
        return getattr(importlib.import_module(self._module), name)


analytics_service = _Feature("subledger.analytics.service")
metrics_upkeep = _Feature("subledger.metrics.upkeep")
apps_service = _Feature("subledger.apps.service")
catalog_service = _Feature("subledger.catalog.service")
currencies_service = _Feature("subledger.currencies.service")
idempotency = _Feature("subledger.core.idempotency")
dashboard_service = _Feature("subledger.dashboard.service")
events_service = _Feature("subledger.events.service")
delivery = _Feature("subledger.worker")
paywalls_service = _Feature("subledger.paywalls.service")
profiles_service = _Feature("subledger.profiles.service")
purchases_service = _Feature("subledger.purchases.service")
refund_saver_service = _Feature("subledger.refund_saver.service")
stores_service = _Feature("subledger.stores.service")
apple_service = _Feature("subledger.stores.apple.service")
google_service = _Feature("subledger.stores.google.service")
stripe_service = _Feature("subledger.stores.stripe.service")
paddle_service = _Feature("subledger.stores.paddle.service")

# Bounds of the options that count back or forward in time: well inside datetime's years 1 to 9999.
CENTURY_DAYS = 36_500
CENTURY_SECONDS = CENTURY_DAYS * 86_400


def _echo_json(value) -> None:
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


def _checked(call, *args):
    """Run a service call; its contract errors and invalid input become a CLI error."""
    try:
        try:
            return call(*args)
        except ValidationError as invalid:
            raise from_validation_errors(invalid.errors()) from None
    except ApiError as error:
        raise click.ClickException(error.summary()) from None


def _settings() -> Settings:
    """The settings from the environment; a bad value is an error that names its variable."""
    try:
        return Settings()
    except ValidationError as invalid:
        problems = [f"SUBLEDGER_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in invalid.errors()]
        raise click.ClickException("; ".join(problems)) from None


def _not_migrated(runtime: Runtime, exc: NotMigrated) -> click.ClickException:
    message = str(exc)
    if earlier := runtime.settings.earlier_database():
        message += (
            f" A database made by an earlier version is at {earlier}: to keep using it, set "
            f"SUBLEDGER_DATA_DIR={earlier.parent} (or move its files into {runtime.settings.data_dir})."
        )
    return click.ClickException(message)


def _runtime(require_migrated: bool = True) -> Runtime:
    runtime = Runtime.from_settings(_settings())
    if require_migrated:
        try:
            runtime.db.require_migrated()
        except NotMigrated as exc:
            raise _not_migrated(runtime, exc) from None
    return runtime


def _runtime_when_reachable() -> Runtime:
    """The runtime once its database answers: a long-running process started while the database
    restarts or is failed over waits for it (every two seconds) rather than exit."""
    runtime = Runtime.from_settings(_settings())
    while True:
        try:
            runtime.db.require_migrated()
            return runtime
        except NotMigrated as exc:
            raise _not_migrated(runtime, exc) from None
        except Exception as error:
            if not unavailable(error):
                raise
            click.echo(f"the database {runtime.db.location} does not answer ({error}); trying again", err=True)
            time.sleep(2)


@click.group()
@click.version_option(package_name="subledger")
def main() -> None:
    """subledger: self-hosted backend for in-app subscriptions.

    The database comes from SUBLEDGER_DATABASE_URL (default: SQLite under
    SUBLEDGER_DATA_DIR, itself the user's data directory by default,
    ~/.local/share/subledger on Linux).
    """


@main.command()
def migrate() -> None:
    """Create or upgrade the database schema to this version."""
    runtime = _runtime(require_migrated=False)
    before, head = runtime.db.schema_revision()
    if before is None and runtime.settings.earlier_database():  # not a second, empty database beside it
        raise _not_migrated(runtime, NotMigrated(f"The database {runtime.db.location} is empty."))
    runtime.db.migrate()
    click.echo(f"database {runtime.db.location} at revision {head} (was {before or 'empty'})", err=True)
    try:
        moved = _repricing(runtime, lambda progress: purchases_service.reprice(runtime, progress))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if moved:
        click.echo(f"repriced at the exchange rates in force: the total revenue of {moved} profile(s)", err=True)
    _rebuild_metrics(runtime)


def _repricing(runtime: Runtime, work: Callable[[Callable[[int], None]], int]) -> int:
    """Run ``work`` with a progress callback that tells how many profiles it has repriced."""
    reported = []

    def progress(done: int) -> None:
        reported.append(done)
        click.echo(f"\rrepricing at the new exchange rates: {done} profiles", err=True, nl=False)

    result = work(progress)
    if reported:
        click.echo("", err=True)
    return result


def _rebuild_metrics(runtime: Runtime) -> None:
    """Rebuild the metric rollups of the apps marked for it, telling how far it got."""

    def progress(app_id: UUID, done: int) -> None:
        click.echo(f"\rrebuilding the metrics of app {app_id}: {done} profiles", err=True, nl=False)

    if metrics_upkeep.rebuild_pending(runtime, progress):
        click.echo("", err=True)


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def backup(directory: Path) -> None:
    """Copy the embedded database, as it stands, into DIRECTORY while the server goes on.

    DIRECTORY becomes a data directory of its own: the database, and the generated
    secret key that opens its sealed secrets. Restore by pointing SUBLEDGER_DATA_DIR at
    it (or copying both files back) with the servers stopped.
    """
    runtime = _runtime()
    settings = runtime.settings
    if not runtime.db.is_sqlite:
        raise click.ClickException("on PostgreSQL, back up with PostgreSQL's own tools (pg_dump, or a base backup)")
    target = directory / DATABASE_FILE
    if target.exists():
        raise click.ClickException(f"{target} exists: back up into a new directory")
    directory.mkdir(parents=True, exist_ok=True)
    runtime.db.backup(target)
    click.echo(f"database copied to {target}", err=True)
    if settings.secret_key:
        click.echo("the secret key is SUBLEDGER_SECRET_KEY's: keep it with the backup", err=True)
    elif (key := settings.data_dir / SECRET_KEY_FILE).exists():
        shutil.copy2(key, directory / SECRET_KEY_FILE)
        click.echo(f"secret key copied to {directory / SECRET_KEY_FILE}", err=True)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 256), help="Server processes.")
def serve(host: str, port: int, workers: int) -> None:
    """Serve the API."""
    from subledger.core import protocol

    runtime = _runtime()
    settings = runtime.settings
    runtime.db.dispose()
    if settings.is_embedded and workers > 1:
        click.echo(
            "note: on SQLite the worker processes take turns at one write lock: more workers serve "
            "more reads, not more writes (see the README).",
            err=True,
        )
    protocol.serve("subledger.app:create_app", host, port, workers, settings.log_level)


@main.group()
def apps() -> None:
    """Apps: each has its own profiles, data and API keys."""


@apps.command("create")
@click.option("--name", required=True, help="A name to recognise the app by.")
def apps_create(name: str) -> None:
    """Create an app and print its secret and public API keys (shown this once only)."""
    runtime = _runtime()
    try:
        _echo_json(apps_service.create_app(runtime.db, name, runtime.clock.now()))
    except ValueError as refused:
        raise click.ClickException(str(refused)) from None


@apps.command("list")
def apps_list() -> None:
    """List apps (never their secrets)."""
    runtime = _runtime()
    _echo_json(apps_service.list_apps(runtime.db, runtime.clock.now()))


@apps.command("web-origins")
@click.option("--app", "app_id", required=True, type=click.UUID, help="The app's id.")
@click.option("--origin", "origins", multiple=True, help="Replaces the list (repeat): https://shop.example.com, or *.")
@click.option("--clear", is_flag=True, help="No page may call the app's Web API from a browser.")
def apps_web_origins(app_id: UUID, origins: tuple[str, ...], clear: bool) -> None:
    """Show, or set, the origins whose pages may call the app's Web API from a browser."""
    runtime = _runtime()
    try:
        if origins or clear:
            kept = apps_service.set_web_origins(runtime.db, app_id, list(origins))
        else:
            kept = apps_service.web_origins(runtime.db, app_id)
    except apps_service.AppNotFound:
        raise click.ClickException(f"no app with id {app_id}") from None
    except ValueError as refused:
        raise click.ClickException(str(refused)) from None
    _echo_json({"app_id": str(app_id), "origins": kept})


@main.group()
def keys() -> None:
    """API keys."""


@keys.command("rotate")
@click.option("--app", "app_id", required=True, type=click.UUID, help="The app's id.")
@click.option(
    "--grace",
    "grace_seconds",
    default=0,
    show_default=True,
    type=click.IntRange(min=0, max=CENTURY_SECONDS),
    help="Seconds the earlier keys keep working, to deploy the new one meanwhile.",
)
@click.option("--public", is_flag=True, help="The public key (for the Web API) instead of the secret key.")
def keys_rotate(app_id: UUID, grace_seconds: int, public: bool) -> None:
    """Issue a new secret API key (or public key) for an app and revoke its earlier ones."""
    runtime = _runtime()
    grace = timedelta(seconds=grace_seconds)
    try:
        kind = "public" if public else "secret"
        _echo_json(apps_service.rotate_key(runtime.db, app_id, runtime.clock.now(), grace, kind))
    except apps_service.AppNotFound:
        raise click.ClickException(f"no app with id {app_id}") from None


def _existing_app(_context: click.Context, _param: click.Parameter, app_id: UUID) -> UUID:
    """``--app`` names an app there is: every command says so at once, rather than failing on
    a database constraint or printing nothing."""
    _known_app(_runtime(), app_id)
    return app_id


APP_OPTION = click.option(
    "--app", "app_id", required=True, type=click.UUID, callback=_existing_app, help="The app's id."
)


@main.group("access-levels")
def access_levels() -> None:
    """Access levels an app's products unlock (premium, ...)."""


@access_levels.command("create")
@APP_OPTION
@click.option("--id", "level_id", required=True, help="The access level id, e.g. premium.")
def access_levels_create(app_id: UUID, level_id: str) -> None:
    """Create an access level."""
    body = _checked(AccessLevelIn.model_validate, {"access_level_id": level_id})
    _echo_json(_checked(catalog_service.create_access_level, _runtime(), app_id, body))


@access_levels.command("list")
@APP_OPTION
def access_levels_list(app_id: UUID) -> None:
    _echo_json(catalog_service.list_access_levels(_runtime(), app_id))


@access_levels.command("delete")
@APP_OPTION
@click.option("--id", "level_id", required=True)
def access_levels_delete(app_id: UUID, level_id: str) -> None:
    """Delete an access level that no product unlocks and no profile was granted."""
    _checked(catalog_service.delete_access_level, _runtime(), app_id, level_id)


@main.group()
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
def products_create(app_id: UUID, **fields) -> None:
    """Create a product; profiles that already bought it get its access level."""
    body = _checked(ProductIn.model_validate, fields)
    _echo_json(_checked(purchases_service.add_product, _runtime(), app_id, body))


@products.command("list")
@APP_OPTION
def products_list(app_id: UUID) -> None:
    _echo_json(catalog_service.list_products(_runtime(), app_id))


@products.command("delete")
@APP_OPTION
@click.option("--product", required=True, help="The store's product id, or the product_id from `products list`.")
@click.option("--store", default=None, help="The store, when products of several stores have that id.")
def products_delete(app_id: UUID, product: str, store: str | None) -> None:
    runtime = _runtime()
    _checked(purchases_service.remove_product, runtime, app_id, _product_id(runtime, app_id, product, store))


def _product_id(runtime, app_id: UUID, product: str, store: str | None) -> UUID:
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


@main.group()
def rates() -> None:
    """Exchange rates to USD (a dated table ships with subledger; loaded rates override it)."""


@rates.command("load")
@click.argument("csv_file", type=click.File("r"))
def rates_load(csv_file) -> None:
    """Load a CSV with the columns currency,usd_per_unit,as_of."""
    runtime = _runtime()
    try:
        text = csv_file.read()
        count = _repricing(runtime, lambda progress: purchases_service.load_rates(runtime, text, progress))
    except ValueError as exc:
        raise click.ClickException(f"{csv_file.name}: {exc}; nothing was loaded") from None
    click.echo(f"loaded {count} rates", err=True)
    _rebuild_metrics(runtime)  # only after an upgrade from a version that kept no rates, only their digest


@rates.command("list")
def rates_list() -> None:
    _echo_json(catalog_service.list_rates(_runtime()))


@main.command()
@click.option(
    "--older-than",
    "days",
    required=True,
    type=click.IntRange(min=1, max=CENTURY_DAYS),
    help="Days: what was recorded before goes.",
)
@click.option("--app", "app_id", type=click.UUID, default=None, help="Only this app's.")
def prune(days: int, app_id: UUID | None) -> None:
    """Delete old events, with their webhook deliveries, old forwarded store notifications, and
    old store notifications.

    An event stays while one of its deliveries is due, refused or dead-lettered, and a
    forward until it is delivered; a store
    notification while it waits for its user, and the newest applied one of each
    subscription chain. Idempotency keys go once a day old, whatever --older-than says. The ledger,
    profiles and metrics are never pruned. Freed space is reused by new rows.
    """
    runtime = _runtime()
    before = runtime.clock.now() - timedelta(days=days)
    events = events_service.prune(runtime, before, app_id)
    forwards = events_service.prune_forwards(runtime, before, app_id)
    keys = idempotency.prune(runtime.db, runtime.clock.now())
    pruned = {"events": events, "forwards": forwards, "idempotency_keys": keys}
    _echo_json({**pruned, **stores_service.prune(runtime, before, app_id)})


@main.command()
@click.option("--app", "app_id", type=click.UUID, default=None, help="Only this app's profiles.")
@click.option("--fix", is_flag=True, help="Store the recomputed state where it differs.")
def verify(app_id: UUID | None, fix: bool) -> None:
    """Recompute every profile and each app's metrics from the ledger and report any difference
    (exit 1 when one is left)."""
    runtime = _runtime()
    if purchases_service.repricing(runtime):
        raise click.ClickException("new exchange rates are still being applied: `subledger migrate` finishes that")
    differences = 0
    for difference in purchases_service.verify(runtime, app_id=app_id, fix=fix):
        differences += 1
        click.echo(orjson.dumps(difference).decode())
    click.echo(f"{differences} profile(s) differ{' (fixed)' if fix and differences else ''}", err=True)
    if app_id:
        checked = [app_id]
    else:
        checked = [UUID(app["app_id"]) for app in apps_service.list_apps(runtime.db, runtime.clock.now())]
    for app in checked:
        if not metrics_upkeep.matches_ledger(runtime, app):
            differences += 1
            click.echo(orjson.dumps({"app_id": str(app), "metrics": "differ", "fixed": fix}).decode())
            if fix:
                metrics_upkeep.rebuild(runtime, app)
    if differences and not fix:
        sys.exit(1)


@apps.command("configure")
@APP_OPTION
@click.option(
    "--small-business/--no-small-business",
    default=None,
    help="The stores take 15% instead of 30% (App Store / Play small business programmes).",
)
@click.option("--tax-rate", type=click.FloatRange(0, 1), default=None, help="Sales tax included in prices, e.g. 0.2.")
@click.option(
    "--rate-limit",
    type=click.IntRange(0),
    default=None,
    help="The app's requests per second, all server processes together (bursts of twice that); 0 removes the limit.",
)
@click.option(
    "--trial-active-after",
    type=click.IntRange(0, 90),
    default=None,
    help="Days after a trial starts to fire trial_active if it has not ended (0: never).",
)
@click.option(
    "--subscription-active-after",
    type=click.IntRange(0, 90),
    default=None,
    help="Days after a subscription starts without a trial to fire subscription_active if still going (0: never).",
)
def apps_configure(
    app_id: UUID,
    small_business: bool | None,
    tax_rate: float | None,
    rate_limit: int | None,
    trial_active_after: int | None,
    subscription_active_after: int | None,
) -> None:
    """Set how event revenue figures (proceeds, net revenue, tax) are computed, the rate limit,
    and the "still active" events."""
    runtime = _runtime()
    try:
        _echo_json(
            apps_service.configure(
                runtime.db,
                app_id,
                small_business,
                None if tax_rate is None else Decimal(str(tax_rate)),
                rate_limit,
                trial_active_after,
                subscription_active_after,
            )
        )
    except apps_service.AppNotFound:
        raise click.ClickException(f"no app with id {app_id}") from None


@main.command()
@click.option(
    "--concurrency",
    default=DELIVERIES_IN_FLIGHT,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Deliveries in flight at once.",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    help="Serve the worker's figures for Prometheus at http://HOST:PORT/metrics.",
)
@click.option("--metrics-host", default="127.0.0.1", show_default=True)
def worker(concurrency: int, metrics_port: int | None, metrics_host: str) -> None:
    """Deliver webhooks and fire expiry events until stopped (SIGTERM or Ctrl-C)."""
    runtime = _runtime_when_reachable()
    if metrics_port is not None:
        from prometheus_client import start_http_server  # here: no other command needs it

        try:
            start_http_server(metrics_port, metrics_host)
        except OSError as exc:
            raise click.ClickException(f"cannot serve metrics on {metrics_host}:{metrics_port}: {exc}") from None
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    delivery_worker = delivery.DeliveryWorker(runtime, in_flight=concurrency)
    click.echo("delivering webhooks", err=True)
    try:
        delivery_worker.run(stop)
    finally:
        delivery_worker.close()


@main.group()
def events() -> None:
    """The event feed."""


@events.command("list")
@APP_OPTION
@click.option("--profile", default=None, help="A customer_user_id, or a profile_id.")
@click.option(
    "--type", "event_types", multiple=True, type=click.Choice(EVENT_TYPES), help="An event type; repeat for several."
)
@click.option("--since", default=None, help="ISO 8601 date-time with an offset.")
@click.option("--until", default=None)
@click.option("--cursor", type=click.IntRange(0, MAX_CURSOR), default=None, help="next_cursor of the previous page.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--oneline", is_flag=True, help="One line an event: when, type, user, product or level.")
def events_list(app_id, profile, event_types, since, until, cursor, limit, oneline) -> None:
    """Events oldest first, as JSON with a next_cursor."""
    try:
        since, until = (parse_datetime(v) if v else None for v in (since, until))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    runtime = _runtime()
    profile_id = _profile_id(runtime, app_id, profile) if profile else None
    page = events_service.feed(runtime, app_id, cursor, limit, profile_id, list(event_types) or None, since, until)
    if not oneline:
        _echo_json(page)
        return
    for event in page["data"]:
        properties = event["payload"].get("event_properties") or {}
        subject = properties.get("vendor_product_id") or properties.get("access_level_id") or ""
        user = event["customer_user_id"] or event["profile_id"]
        click.echo(f"{event['event_datetime']}  {event['event_type']:<34} {user}  {subject}".rstrip())
    if page["next_cursor"]:
        click.echo(f"(more: --cursor {page['next_cursor']})", err=True)


def _profile_id(runtime: Runtime, app_id: UUID, profile: str) -> UUID:
    """The profile a person names by its customer_user_id or its profile_id."""
    found = profiles_service.find_profile_id(runtime, app_id, profile)
    if found is None:
        raise click.ClickException(f"no profile {profile!r} in app {app_id}")
    return found


@main.group()
def webhooks() -> None:
    """Webhook endpoints that receive an app's events."""


@webhooks.command("create")
@APP_OPTION
@click.option("--url", default=None, help="Where production events go.")
@click.option("--sandbox-url", default=None, help="Where sandbox events go.")
@click.option(
    "--event-type", "event_types", multiple=True, help="Only these types (repeat); default: all but profile_*."
)
@click.option("--event-name", "event_names", multiple=True, help="TYPE=NAME: the receiver gets NAME for TYPE (repeat).")
@click.option("--authorization", default=None, help="Sent as the Authorization header of production deliveries.")
@click.option("--sandbox-authorization", default=None, help="Sent as the Authorization header of sandbox deliveries.")
@click.option("--send-trial-price/--no-send-trial-price", default=False, show_default=True)
@click.option("--exclude-historical-events/--no-exclude-historical-events", default=False, show_default=True)
@click.option("--send-user-attributes/--no-send-user-attributes", default=True, show_default=True)
@click.option("--send-attribution/--no-send-attribution", default=True, show_default=True)
@click.option("--send-play-store-purchase-token/--no-send-play-store-purchase-token", default=False, show_default=True)
def webhooks_create(app_id: UUID, event_types, event_names, **fields) -> None:
    """Register an endpoint after each of its URLs answers a verification POST; prints its
    signing secret once."""
    names = dict(_pair(pair, "--event-name") for pair in event_names)
    body = _checked(
        EndpointIn.model_validate, {**fields, "event_types": list(event_types) or None, "event_names": names or None}
    )
    _echo_json(_checked(asyncio.run, events_service.register_endpoint(_runtime(), app_id, body)))


def _pair(value: str, option: str) -> tuple[str, str]:
    key, separator, name = value.partition("=")
    if not separator:
        raise click.BadParameter(f"{value!r} is not TYPE=NAME", param_hint=option)
    return key, name


@webhooks.command("list")
@APP_OPTION
def webhooks_list(app_id: UUID) -> None:
    _echo_json(events_service.list_endpoints(_runtime(), app_id))


@webhooks.command("delete")
@APP_OPTION
@click.option("--endpoint", "endpoint_id", required=True, type=click.UUID)
def webhooks_delete(app_id: UUID, endpoint_id: UUID) -> None:
    _checked(events_service.delete_endpoint, _runtime(), app_id, endpoint_id)


@main.group()
def deliveries() -> None:
    """Webhook deliveries, the ones their receivers refused, and the dead-letter list."""


@deliveries.command("list")
@APP_OPTION
@click.option("--status", type=click.Choice(["pending", "delivered", "refused", "dead"]), default=None)
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
def deliveries_list(app_id: UUID, status: str | None, limit: int) -> None:
    _echo_json(events_service.list_deliveries(_runtime(), app_id, status, None, limit))


@deliveries.command("replay")
@APP_OPTION
@click.option(
    "--delivery",
    "delivery_ids",
    multiple=True,
    type=click.UUID,
    help="Only these (repeat); default: all dead and refused.",
)
def deliveries_replay(app_id: UUID, delivery_ids) -> None:
    """Queue dead-lettered and refused deliveries again."""
    count = events_service.replay(_runtime(), app_id, list(delivery_ids) or None)
    click.echo(f"replayed {count} deliveries", err=True)


def _json_option(value: str | None, what: str):
    try:
        return None if value is None else strict_json.loads(value)
    except orjson.JSONDecodeError as exc:
        raise click.ClickException(f"{what} is not JSON: {exc}") from None


@main.group()
def paywalls() -> None:
    """Paywalls: products in order and remote configs per locale."""


def _remote_configs(file) -> list[dict[str, str]]:
    """A ``--remote-config`` file ({"en": {...}, "fr": {...}}) as the API takes remote configs."""
    configs = _json_option(file.read(), "the remote config")
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
def paywalls_create(app_id: UUID, title: str, product_ids, remote_config, web_purchase_url) -> None:
    body = {"title": title, "product_ids": list(product_ids), "web_purchase_url": web_purchase_url}
    if remote_config:
        body["remote_configs"] = _remote_configs(remote_config)
    _echo_json(_checked(paywalls_service.create_paywall, _runtime(), app_id, _checked(PaywallIn.model_validate, body)))


@paywalls.command("list")
@APP_OPTION
def paywalls_list(app_id: UUID) -> None:
    _echo_json(paywalls_service.list_paywalls_admin(_runtime(), app_id))


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
def paywalls_update(app_id: UUID, paywall_id: UUID, title, product_ids, remote_config, web_purchase_url, state) -> None:
    """Change a paywall's title, products, remote configs, web purchase URL or state (what is not given stays)."""
    changes = {name: value for name, value in {"title": title, "state": state}.items() if value is not None}
    if product_ids:
        changes["product_ids"] = list(product_ids)
    if remote_config:
        changes["remote_configs"] = _remote_configs(remote_config)
    if web_purchase_url is not None:
        changes["web_purchase_url"] = web_purchase_url or None
    body = _checked(PaywallPatch.model_validate, changes)
    _echo_json(_checked(paywalls_service.update_paywall, _runtime(), app_id, paywall_id, body))


@paywalls.command("archive")
@APP_OPTION
@click.option("--paywall", "paywall_id", required=True, type=click.UUID)
def paywalls_archive(app_id: UUID, paywall_id: UUID) -> None:
    """Archive a paywall no placement shows."""
    body = PaywallPatch.model_validate({"state": "archived"})
    _echo_json(_checked(paywalls_service.update_paywall, _runtime(), app_id, paywall_id, body))


@paywalls.command("metrics")
@APP_OPTION
def paywalls_metrics(app_id: UUID) -> None:
    """Views, purchases, conversion and revenue per paywall and variation."""
    _echo_json(paywalls_service.paywall_metrics(_runtime(), app_id))


@main.group()
def audiences() -> None:
    """Audiences: rules over a profile's attributes, store, country, platform and access levels."""


@audiences.command("create")
@APP_OPTION
@click.option("--id", "audience_id", required=True)
@click.option("--rules", required=True, help='JSON: [{"field": "ip_country", "op": "eq", "value": "FR"}, ...]')
def audiences_create(app_id: UUID, audience_id: str, rules: str) -> None:
    body = _checked(AudienceIn.model_validate, {"audience_id": audience_id, "rules": _json_option(rules, "--rules")})
    _echo_json(_checked(paywalls_service.create_audience, _runtime(), app_id, body))


@audiences.command("list")
@APP_OPTION
def audiences_list(app_id: UUID) -> None:
    _echo_json(paywalls_service.list_audiences(_runtime(), app_id))


@audiences.command("delete")
@APP_OPTION
@click.option("--id", "audience_id", required=True)
def audiences_delete(app_id: UUID, audience_id: str) -> None:
    _checked(paywalls_service.delete_audience, _runtime(), app_id, audience_id)


@main.group("ab-tests")
def ab_tests() -> None:
    """A/B tests of paywalls with weights."""


@ab_tests.command("create")
@APP_OPTION
@click.option("--name", required=True)
@click.option("--variation", "variations", multiple=True, required=True, help="PAYWALL_ID:WEIGHT (repeat).")
def ab_tests_create(app_id: UUID, name: str, variations) -> None:
    parsed = []
    for variation in variations:
        paywall_id, _, weight = variation.partition(":")
        number = whole_number(weight, 0, 2**31)  # anything else goes on as text, for the model to refuse
        parsed.append({"paywall_id": paywall_id, "weight": weight if number is None else number})
    body = _checked(AbTestIn.model_validate, {"name": name, "variations": parsed})
    _echo_json(_checked(paywalls_service.create_ab_test, _runtime(), app_id, body))


@ab_tests.command("list")
@APP_OPTION
def ab_tests_list(app_id: UUID) -> None:
    _echo_json(paywalls_service.list_ab_tests(_runtime(), app_id))


@ab_tests.command("metrics")
@APP_OPTION
@click.option("--test", "ab_test_id", required=True, type=click.UUID)
def ab_tests_metrics(app_id: UUID, ab_test_id: UUID) -> None:
    """Each variation's figures and the p-value of its conversion against the first variation's."""
    _echo_json(_checked(paywalls_service.ab_test_metrics, _runtime(), app_id, ab_test_id))


@main.group()
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
def placements_set(app_id: UUID, placement_id: str, targets) -> None:
    body = _checked(
        PlacementIn.model_validate,
        {"placement_id": placement_id, "targets": [_json_option(t, "--target") for t in targets]},
    )
    _echo_json(_checked(paywalls_service.set_placement, _runtime(), app_id, body))


@placements.command("list")
@APP_OPTION
def placements_list(app_id: UUID) -> None:
    _echo_json(paywalls_service.list_placements(_runtime(), app_id))


if __name__ == "__main__":
    sys.exit(main())


@main.group()
def stores() -> None:
    """Store integrations: App Store, Google Play and Stripe tell subledger about purchases.

    Secrets are stored sealed; an option left out keeps its setting, an empty
    secret ("") forgets it.
    """


def _known_app(runtime: Runtime, app_id: UUID) -> None:
    if not apps_service.app_exists(runtime.db, app_id):
        raise click.ClickException(f"no app with id {app_id}")


@stores.command("app-store")
@APP_OPTION
@click.option("--bundle-id", default=None, help="The app's bundle id (com.example.app).")
@click.option(
    "--app-apple-id",
    type=click.IntRange(1, 2**63 - 1),
    default=None,
    help="The app's Apple id (needed for Production).",
)
@click.option(
    "--root-certificate",
    "root_certificates",
    multiple=True,
    type=click.File("rb"),
    help="An Apple root certificate, DER or PEM (AppleRootCA-G3.cer from apple.com/certificateauthority); repeatable.",
)
@click.option("--issuer-id", default=None, help="App Store Connect API issuer id.")
@click.option("--key-id", default=None, help="App Store Connect API key id.")
@click.option("--private-key", type=click.File("r"), default=None, help="The .p8 file of that key.")
def stores_app_store(app_id, bundle_id, app_apple_id, root_certificates, issuer_id, key_id, private_key) -> None:
    """Configure the App Store: notifications go to /stores/app-store/<app>/notifications/."""
    runtime = _runtime()
    roots = [file.read() for file in root_certificates]
    key = private_key.read() if private_key else None
    _echo_json(
        _checked(apple_service.configure, runtime, app_id, bundle_id, app_apple_id, roots, issuer_id, key_id, key)
    )


@stores.command("play-store")
@APP_OPTION
@click.option("--package-name", default=None, help="The app's package name (com.example.app).")
@click.option("--service-account", type=click.File("r"), default=None, help="The service account's JSON key file.")
@click.option(
    "--push-service-account",
    default=None,
    help="The email of the service account the Pub/Sub push subscription authenticates as ('' for none).",
)
@click.option("--push-audience", default=None, help="The audience the push subscription's OIDC tokens name.")
def stores_play_store(
    app_id: UUID, package_name: str | None, service_account, push_service_account, push_audience
) -> None:
    """Configure Google Play, and print the Pub/Sub push path (it holds a secret token, which
    counts only until pushes are authenticated with Google's OIDC tokens)."""
    runtime = _runtime()
    key = service_account.read() if service_account else None
    result = _checked(google_service.configure, runtime, app_id, package_name, key, push_service_account, push_audience)
    _echo_json({**result, "push_path": google_service.push_path(runtime, app_id)})


@stores.command("forward")
@APP_OPTION
@click.option("--store", type=click.Choice(["app_store", "play_store"]), required=True)
@click.option("--url", default=None, help="Where every verified notification of the store goes, as it came.")
@click.option("--authorization", default=None, help="Sent as the Authorization header of each.")
@click.option("--off", is_flag=True, help="Stop forwarding the store's notifications.")
def stores_forward(app_id: UUID, store: str, url: str | None, authorization: str | None, off: bool) -> None:
    """Forward the store's notifications, as they came, to a URL of yours (retried as webhooks are)."""
    if off == (url is not None):
        raise click.UsageError("give --url, or --off")
    runtime = _runtime()
    try:
        _echo_json(stores_service.set_forwarding(runtime, app_id, store, url, authorization))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


@stores.command("forwards")
@APP_OPTION
@click.option("--status", type=click.Choice(["pending", "delivered", "refused", "dead"]), default=None)
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--replay", is_flag=True, help="Queue the dead and refused ones again.")
def stores_forwards(app_id: UUID, status: str | None, limit: int, replay: bool) -> None:
    """Forwarded notifications, newest first, one JSON object a line."""
    runtime = _runtime()
    if replay:
        click.echo(f"replayed {events_service.replay_forwards(runtime, app_id)} forwards", err=True)
        return
    for row in events_service.list_forwards(runtime, app_id, status, limit):
        click.echo(orjson.dumps(row).decode())


@stores.command("stripe")
@APP_OPTION
@click.option("--secret-key", default=None, help="Stripe's live secret (or restricted) API key (sk_live_...).")
@click.option("--webhook-secret", default=None, help="The live webhook endpoint's signing secret (whsec_...).")
@click.option("--test-secret-key", default=None, help="The test mode key (sk_test_...), for test mode events.")
@click.option("--test-webhook-secret", default=None, help="The test mode webhook endpoint's signing secret.")
@click.option(
    "--profile-source",
    type=click.Choice(["metadata", "email", "client_reference_id"]),
    default=None,
    help="Where a purchase names its profile: metadata's customer_user_id (the default), the customer's "
    "email, or the checkout session's client_reference_id (Payment Links).",
)
def stores_stripe(
    app_id: UUID,
    secret_key: str | None,
    webhook_secret: str | None,
    test_secret_key: str | None,
    test_webhook_secret: str | None,
    profile_source: str | None,
) -> None:
    """Configure Stripe: webhooks go to /stores/stripe/<app>/webhook/."""
    runtime = _runtime()
    keys = (secret_key, webhook_secret, test_secret_key, test_webhook_secret)
    _echo_json(stripe_service.configure(runtime, app_id, *keys, profile_source))


@stores.command("paddle")
@APP_OPTION
@click.option("--api-key", default=None, help="A Paddle Billing API key that can read transactions and subscriptions.")
@click.option("--notification-secret", default=None, help="The notification destination's secret key.")
@click.option("--sandbox/--live", default=None, help="Paddle's sandbox or live environment.")
@click.option(
    "--match-email/--no-match-email",
    default=None,
    help="Name the profile by the Paddle customer's email when the checkout's custom data has no customer_user_id.",
)
def stores_paddle(
    app_id: UUID, api_key: str | None, notification_secret: str | None, sandbox: bool | None, match_email: bool | None
) -> None:
    """Configure Paddle Billing: notifications go to /stores/paddle/<app>/notifications/, and
    purchase/paddle/token/validate/ reads Paddle with the API key."""
    runtime = _runtime()
    _echo_json(paddle_service.configure(runtime, app_id, api_key, notification_secret, sandbox, match_email))


@stores.command("notifications")
@APP_OPTION
@click.option("--store", type=click.Choice(CONNECTED_STORES), default=None)
@click.option("--status", type=click.Choice(["applied", "pending", "stale", "ignored"]), default=None)
@click.option("--refused", is_flag=True, help="The audit log of requests that failed verification instead.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10000))
def stores_notifications(app_id: UUID, store: str | None, status: str | None, refused: bool, limit: int) -> None:
    """Notifications the stores sent, newest first, one JSON object a line."""
    runtime = _runtime()
    if refused:
        rows = [stores_service.refused_out(row) for row in stores_service.list_refused(runtime, app_id, limit)]
    else:
        found = stores_service.list_notifications(runtime, app_id, store, status, limit)
        rows = [stores_service.notification_out(row) for row in found]
    for row in rows:
        click.echo(orjson.dumps(row).decode())


@main.group("refund-saver")
def refund_saver() -> None:
    """The Refund Saver: it answers the App Store's consumption requests (a customer asked Apple for
    a refund) with what the ledger knows, as the app and the profile prefer. It needs the App Store
    configured with an App Store Connect API key (`subledger stores app-store --issuer-id ...`)."""


@refund_saver.command("configure")
@APP_OPTION
@click.option("--on/--off", "enabled", default=None, help="Answer consumption requests, or not (off at first).")
@click.option(
    "--default-preference",
    type=click.Choice(APP_PREFERENCES),
    default=None,
    help="What Apple is asked for a profile that set none: decline_first (decline a transaction's first "
    "request, grant the next; the default), decline, grant, grant_prorated (the unused share), no_preference.",
)
@click.option(
    "--consent-policy",
    type=click.Choice(CONSENT_POLICIES),
    default=None,
    help="For a profile that never said: opt_out takes it to consent (the default), opt_in not.",
)
def refund_saver_configure(app_id: UUID, enabled, default_preference, consent_policy) -> None:
    """Set the app's Refund Saver settings (what is not given stays) and print them."""
    runtime = _runtime()
    given = {"enabled": enabled, "default_preference": default_preference, "consent_policy": consent_policy}
    body = AppSettingsIn.model_validate({name: value for name, value in given.items() if value is not None})
    _echo_json(refund_saver_service.configure(runtime, app_id, body))


@refund_saver.command("requests")
@APP_OPTION
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10000))
def refund_saver_requests(app_id: UUID, limit: int) -> None:
    """The consumption requests received and what was answered, newest first, one JSON object a line."""
    for row in refund_saver_service.requests(_runtime(), app_id, limit):
        click.echo(orjson.dumps(row).decode())


@main.group()
def currencies() -> None:
    """Virtual currencies (coins, credits, gems): each profile's balances, changed through the API's
    vc/transactions and by purchases of products that credit them. The API answers 403 until they
    are turned on for the app."""


def _currency_call(function, *args):
    try:
        return function(*args)
    except currencies_rules.CurrencyError as error:
        raise click.ClickException(str(error)) from None


@currencies.command("configure")
@APP_OPTION
@click.option("--on/--off", "enabled", required=True, help="Turn the API's virtual currency endpoints on or off.")
def currencies_configure(app_id: UUID, enabled: bool) -> None:
    _echo_json(currencies_service.enable(_runtime(), app_id, enabled))


@currencies.command("list")
@APP_OPTION
def currencies_list(app_id: UUID) -> None:
    """Whether the endpoints are on, and the app's currencies."""
    _echo_json(currencies_service.settings(_runtime(), app_id))


@currencies.command("add")
@APP_OPTION
@click.argument("code")
@click.argument("name")
def currencies_add(app_id: UUID, code: str, name: str) -> None:
    """Add a currency: CODE is what the API names it (1 to 30 letters, digits, underscores)."""
    _echo_json(_currency_call(currencies_service.add_currency, _runtime(), app_id, code, name))


@currencies.command("rename")
@APP_OPTION
@click.argument("code")
@click.argument("name")
def currencies_rename(app_id: UUID, code: str, name: str) -> None:
    _echo_json(_currency_call(currencies_service.rename_currency, _runtime(), app_id, code, name))


@currencies.command("delete")
@APP_OPTION
@click.argument("code")
def currencies_delete(app_id: UUID, code: str) -> None:
    """Delete a currency that no transaction and no product has used."""
    _currency_call(currencies_service.remove_currency, _runtime(), app_id, code)


def _grant(_context, _param, values: tuple[str, ...]) -> list[tuple[str, int]]:
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
    runtime = _runtime()
    product_id = _product_id(runtime, app_id, product, store)
    _echo_json(_currency_call(currencies_service.set_product_grants, runtime, app_id, product_id, grants))


@main.command()
@APP_OPTION
@click.option("--period", type=click.Choice(["day", "week", "month"]), default="day", show_default=True)
@click.option("--start", type=click.DateTime(["%Y-%m-%d"]), default=None, help="First day (default: 30 periods back).")
@click.option("--end", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Last day (default: today).")
@click.option(
    "--environment", type=click.Choice(["Production", "Sandbox", "all"]), default="Production", show_default=True
)
@click.option("--store", default=None, help="app_store, play_store, stripe or a custom store.")
@click.option("--country", default=None, help="The store country (ISO 3166 alpha-2).")
@click.option("--product", default=None, help="A store_product_id.")
@click.option("--cohorts", is_flag=True, help="Monthly retention by month of first payment instead.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV instead of a table.")
def metrics(app_id, period, start, end, environment, store, country, product, cohorts, as_csv) -> None:
    """Revenue, MRR/ARR, subscriptions, trials, churn, refunds, ARPU/ARPPU by day, week or month (UTC)."""
    query = analytics_service.MetricsQuery(
        period=period,
        start=start.date() if start else None,
        end=end.date() if end else None,
        environment=None if environment == "all" else environment,
        store=store,
        country=country.upper() if country else None,
        product=product,
    )
    result = _checked(analytics_service.metrics, _runtime(), app_id, query)
    if cohorts:
        months = max((len(row["retention"]) for row in result["cohorts"]), default=0)
        header = ["cohort", "subscriptions", *(f"month_{k}" for k in range(months))]
        # Newer cohorts have fewer months behind them: their later months are empty cells.
        rows = [
            [row["cohort"], row["subscriptions"], *row["retention"], *[None] * (months - len(row["retention"]))]
            for row in result["cohorts"]
        ]
    else:
        header = ["date", *analytics_service.METRICS]
        rows = [[row[name] for name in header] for row in result["data"]]
    _echo_table(header, rows, as_csv)


def _echo_table(header: list[str], rows: list[list], as_csv: bool) -> None:
    """Rows as CSV, or as a table with aligned columns (empty cells where a value is undefined)."""
    cells = [[("" if value is None else str(value)) for value in row] for row in rows]
    if as_csv:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(cells)
        click.echo(out.getvalue(), nl=False)
        return
    widths = [max([len(name), *(len(row[i]) for row in cells)]) for i, name in enumerate(header)]
    click.echo("  ".join(name.rjust(width) for name, width in zip(header, widths, strict=True)))
    for row in cells:
        click.echo("  ".join(value.rjust(width) for value, width in zip(row, widths, strict=True)))


EXPORT_COLUMNS = {
    "profiles": transfer.PROFILE_COLUMNS,
    "transactions": transfer.TRANSACTION_COLUMNS,
    "events": transfer.EVENT_COLUMNS,
}


@main.command("export")
@APP_OPTION
@click.argument("what", type=click.Choice(list(EXPORT_COLUMNS)))
@click.option("--format", "file_format", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("--output", "-o", default="-", help="A file (default: standard output).")
def export(app_id: UUID, what: str, file_format: str, output: str) -> None:
    """Write every profile, transaction or event of an app as JSON Lines or CSV.

    Transactions come out as import lines: `subledger import` takes them back.
    """
    runtime = _runtime()
    total = analytics_service.export_size(runtime, app_id, what)
    flat = file_format == "csv"
    with (
        click.open_file(output, "w", encoding="utf-8", lazy=False) as out,
        click.progressbar(length=total, label=f"exporting {total} {what}", file=sys.stderr) as progress,
    ):
        writer = csv.DictWriter(out, EXPORT_COLUMNS[what], lineterminator="\n") if flat else None
        if writer:
            writer.writeheader()
        for row in analytics_service.export_rows(runtime, app_id, what, flat):
            if writer:
                writer.writerow(row)
            else:
                out.write(orjson.dumps(row).decode() + "\n")
            progress.update(1)


def _csv_lines(raw, progress) -> Iterator[tuple[int, dict | str]]:
    """(line number, columns) of each CSV record, advancing the progress bar by bytes read."""

    def text():
        for line in raw:
            progress.update(len(line))
            yield line.decode("utf-8", "replace")

    reader = csv.DictReader(text())
    for columns in reader:
        number = reader.line_num
        if None in columns:
            yield number, "more cells than columns"
            continue
        try:
            yield number, transfer.unflatten(columns)
        except transfer.BadRow as bad:
            yield number, str(bad)


def _jsonl_lines(raw, progress) -> Iterator[tuple[int, dict | str]]:
    for number, line in enumerate(raw, start=1):
        progress.update(len(line))
        if not line.strip():
            continue
        try:
            body = strict_json.loads(line)
        except orjson.JSONDecodeError as error:
            yield number, f"not JSON: {error}"
            continue
        yield number, body if isinstance(body, dict) else "not a JSON object"


@main.command("import")
@APP_OPTION
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--format", "file_format", type=click.Choice(["jsonl", "csv"]), default=None, help="Default: by extension."
)
def import_(app_id: UUID, path: str, file_format: str | None) -> None:
    """Record historical transactions from CSV or JSON Lines (as `subledger export transactions` writes them).

    Each line is recorded as set-transaction would record it, so importing a file
    again changes nothing (`changed` counts the lines that did); a profile is created for an
    unknown customer_user_id.
    A bad line is reported with its number and none of it is recorded; the exit
    status is then 1.
    """
    runtime = _runtime()
    file_format = file_format or ("csv" if path.lower().endswith(".csv") else "jsonl")
    read = _csv_lines if file_format == "csv" else _jsonl_lines
    with (
        open(path, "rb") as raw,
        click.progressbar(length=os.path.getsize(path), label="importing", file=sys.stderr) as progress,
    ):
        report = analytics_service.import_transactions(runtime, app_id, read(raw, progress))
    for number, why in report.bad:
        click.echo(f"line {number}: {why}", err=True)
    _echo_json({"read": report.read, "imported": report.imported, "changed": report.changed, "bad": len(report.bad)})
    if report.bad:
        sys.exit(1)


@main.group()
def operators() -> None:
    """People who may sign in to the dashboard at /dashboard/."""


@operators.command("create")
@click.option("--email", required=True)
@click.password_option(
    help="At least 12 characters (asked for when not given; or SUBLEDGER_OPERATOR_PASSWORD).",
    envvar="SUBLEDGER_OPERATOR_PASSWORD",
)
def operators_create(email: str, password: str) -> None:
    """Create an operator (the password is stored as an argon2id hash)."""
    try:
        _echo_json(dashboard_service.create_operator(_runtime(), email, password))
    except dashboard_service.OperatorExists:
        raise click.ClickException(f"an operator {email} exists already") from None
    except ValueError as refused:  # a weak password, or an email the table cannot hold
        raise click.ClickException(str(refused)) from None


@operators.command("list")
def operators_list() -> None:
    _echo_json(dashboard_service.list_operators(_runtime()))


@operators.command("delete")
@click.option("--email", required=True)
def operators_delete(email: str) -> None:
    """Delete an operator; their sessions end with them."""
    if not dashboard_service.delete_operator(_runtime(), email):
        raise click.ClickException(f"no operator {email}")
