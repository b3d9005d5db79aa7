"""The event feed, webhook endpoints and their deliveries."""

import asyncio
from typing import Any
from uuid import UUID

import click

from subledger.cli.common import (
    APP_OPTION,
    checked,
    echo_json,
    load_runtime,
)
from subledger.core.dates import parse_datetime
from subledger.core.runtime import Runtime
from subledger.events import service as events_service
from subledger.events.rules import EVENT_TYPES, MAX_CURSOR
from subledger.events.schemas import EndpointIn
from subledger.profiles import service as profiles_service


@click.group()
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
def events_list(
    app_id: UUID,
    profile: str | None,
    event_types: tuple[str, ...],
    since: str | None,
    until: str | None,
    cursor: int | None,
    limit: int,
    oneline: bool,
) -> None:
    """Events oldest first, as JSON with a next_cursor."""
    try:
        start, end = (parse_datetime(v) if v else None for v in (since, until))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    runtime = load_runtime()
    profile_id = _profile_id(runtime, app_id, profile) if profile else None
    page = events_service.feed(runtime, app_id, cursor, limit, profile_id, list(event_types) or None, start, end)
    if not oneline:
        echo_json(page)
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


@click.group()
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
def webhooks_create(app_id: UUID, event_types: tuple[str, ...], event_names: tuple[str, ...], **fields: Any) -> None:
    """Register an endpoint after each of its URLs answers a verification POST; prints its
    signing secret once."""
    names = dict(_pair(pair, "--event-name") for pair in event_names)
    body = checked(
        EndpointIn.model_validate, {**fields, "event_types": list(event_types) or None, "event_names": names or None}
    )
    echo_json(checked(asyncio.run, events_service.register_endpoint(load_runtime(), app_id, body)))


def _pair(value: str, option: str) -> tuple[str, str]:
    key, separator, name = value.partition("=")
    if not separator:
        raise click.BadParameter(f"{value!r} is not TYPE=NAME", param_hint=option)
    return key, name


@webhooks.command("list")
@APP_OPTION
def webhooks_list(app_id: UUID) -> None:
    echo_json(events_service.list_endpoints(load_runtime(), app_id))


@webhooks.command("delete")
@APP_OPTION
@click.option("--endpoint", "endpoint_id", required=True, type=click.UUID)
def webhooks_delete(app_id: UUID, endpoint_id: UUID) -> None:
    checked(events_service.delete_endpoint, load_runtime(), app_id, endpoint_id)


@click.group()
def deliveries() -> None:
    """Webhook deliveries, the ones their receivers refused, and the dead-letter list."""


@deliveries.command("list")
@APP_OPTION
@click.option("--status", type=click.Choice(["pending", "delivered", "refused", "dead"]), default=None)
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
def deliveries_list(app_id: UUID, status: str | None, limit: int) -> None:
    echo_json(events_service.list_deliveries(load_runtime(), app_id, status, None, limit))


@deliveries.command("replay")
@APP_OPTION
@click.option(
    "--delivery",
    "delivery_ids",
    multiple=True,
    type=click.UUID,
    help="Only these (repeat); default: all dead and refused.",
)
def deliveries_replay(app_id: UUID, delivery_ids: tuple[UUID, ...]) -> None:
    """Queue dead-lettered and refused deliveries again."""
    count = events_service.replay(load_runtime(), app_id, list(delivery_ids) or None)
    click.echo(f"replayed {count} deliveries", err=True)
