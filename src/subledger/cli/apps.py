"""Apps, their settings and their API keys."""

from datetime import timedelta
from decimal import Decimal
from uuid import UUID

import click

from subledger.apps import service as apps_service
from subledger.cli.common import APP_OPTION, CENTURY_SECONDS, echo_json, load_runtime


@click.group()
def apps() -> None:
    """Apps: each has its own profiles, data and API keys."""


@apps.command("create")
@click.option("--name", required=True, help="A name to recognise the app by.")
def apps_create(name: str) -> None:
    """Create an app and print its secret and public API keys (shown this once only)."""
    runtime = load_runtime()
    try:
        echo_json(apps_service.create_app(runtime.db, name, runtime.clock.now()))
    except ValueError as refused:
        raise click.ClickException(str(refused)) from None


@apps.command("list")
def apps_list() -> None:
    """List apps (never their secrets)."""
    runtime = load_runtime()
    echo_json(apps_service.list_apps(runtime.db, runtime.clock.now()))


@apps.command("web-origins")
@click.option("--app", "app_id", required=True, type=click.UUID, help="The app's id.")
@click.option("--origin", "origins", multiple=True, help="Replaces the list (repeat): https://shop.example.com, or *.")
@click.option("--clear", is_flag=True, help="No page may call the app's Web API from a browser.")
def apps_web_origins(app_id: UUID, origins: tuple[str, ...], clear: bool) -> None:
    """Show, or set, the origins whose pages may call the app's Web API from a browser."""
    runtime = load_runtime()
    try:
        if origins or clear:
            kept = apps_service.set_web_origins(runtime.db, app_id, list(origins))
        else:
            kept = apps_service.web_origins(runtime.db, app_id)
    except apps_service.AppNotFound:
        raise click.ClickException(f"no app with id {app_id}") from None
    except ValueError as refused:
        raise click.ClickException(str(refused)) from None
    echo_json({"app_id": str(app_id), "origins": kept})


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
    runtime = load_runtime()
    try:
        echo_json(
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


@click.group()
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
    runtime = load_runtime()
    grace = timedelta(seconds=grace_seconds)
    try:
        kind = "public" if public else "secret"
        echo_json(apps_service.rotate_key(runtime.db, app_id, runtime.clock.now(), grace, kind))
    except apps_service.AppNotFound:
        raise click.ClickException(f"no app with id {app_id}") from None
