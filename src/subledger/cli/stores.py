"""Store connections, their notifications, and the Refund Saver."""

from typing import IO
from uuid import UUID

import click
import orjson

from subledger.cli.common import APP_OPTION, checked, echo_json, load_runtime
from subledger.events import service as events_service
from subledger.refund_saver import service as refund_saver_service
from subledger.refund_saver.rules import APP_PREFERENCES, CONSENT_POLICIES
from subledger.refund_saver.schemas import AppSettingsIn
from subledger.stores import service as stores_service
from subledger.stores.apple import service as apple_service
from subledger.stores.google import service as google_service
from subledger.stores.paddle import service as paddle_service
from subledger.stores.rules import CONNECTED_STORES
from subledger.stores.stripe import service as stripe_service


@click.group()
def stores() -> None:
    """Store integrations: App Store, Google Play, Stripe and Paddle tell subledger about purchases.

    Secrets are stored sealed; an option left out keeps its setting, an empty
    secret ("") forgets it.
    """


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
def stores_app_store(
    app_id: UUID,
    bundle_id: str | None,
    app_apple_id: int | None,
    root_certificates: tuple[IO[bytes], ...],
    issuer_id: str | None,
    key_id: str | None,
    private_key: IO[str] | None,
) -> None:
    """Configure the App Store: notifications go to /stores/app-store/<app>/notifications/."""
    runtime = load_runtime()
    roots = [file.read() for file in root_certificates]
    key = private_key.read() if private_key else None
    echo_json(checked(apple_service.configure, runtime, app_id, bundle_id, app_apple_id, roots, issuer_id, key_id, key))


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
    app_id: UUID,
    package_name: str | None,
    service_account: IO[str] | None,
    push_service_account: str | None,
    push_audience: str | None,
) -> None:
    """Configure Google Play, and print the Pub/Sub push path (it holds a secret token, which
    counts only until pushes are authenticated with Google's OIDC tokens)."""
    runtime = load_runtime()
    key = service_account.read() if service_account else None
    result = checked(google_service.configure, runtime, app_id, package_name, key, push_service_account, push_audience)
    echo_json({**result, "push_path": google_service.push_path(runtime, app_id)})


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
    runtime = load_runtime()
    try:
        echo_json(stores_service.set_forwarding(runtime, app_id, store, url, authorization))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


@stores.command("forwards")
@APP_OPTION
@click.option("--status", type=click.Choice(["pending", "delivered", "refused", "dead"]), default=None)
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--replay", is_flag=True, help="Queue the dead and refused ones again.")
def stores_forwards(app_id: UUID, status: str | None, limit: int, replay: bool) -> None:
    """Forwarded notifications, newest first, one JSON object a line."""
    runtime = load_runtime()
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
    runtime = load_runtime()
    keys = (secret_key, webhook_secret, test_secret_key, test_webhook_secret)
    echo_json(stripe_service.configure(runtime, app_id, *keys, profile_source))


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
    runtime = load_runtime()
    echo_json(paddle_service.configure(runtime, app_id, api_key, notification_secret, sandbox, match_email))


@stores.command("notifications")
@APP_OPTION
@click.option("--store", type=click.Choice(CONNECTED_STORES), default=None)
@click.option("--status", type=click.Choice(["applied", "pending", "stale", "ignored"]), default=None)
@click.option("--refused", is_flag=True, help="The audit log of requests that failed verification instead.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10000))
def stores_notifications(app_id: UUID, store: str | None, status: str | None, refused: bool, limit: int) -> None:
    """Notifications the stores sent, newest first, one JSON object a line."""
    runtime = load_runtime()
    if refused:
        rows = [stores_service.refused_out(row) for row in stores_service.list_refused(runtime, app_id, limit)]
    else:
        found = stores_service.list_notifications(runtime, app_id, store, status, limit)
        rows = [stores_service.notification_out(row) for row in found]
    for row in rows:
        click.echo(orjson.dumps(row).decode())


@click.group("refund-saver")
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
def refund_saver_configure(
    app_id: UUID, enabled: bool | None, default_preference: str | None, consent_policy: str | None
) -> None:
    """Set the app's Refund Saver settings (what is not given stays) and print them."""
    runtime = load_runtime()
    given = {"enabled": enabled, "default_preference": default_preference, "consent_policy": consent_policy}
    body = AppSettingsIn.model_validate({name: value for name, value in given.items() if value is not None})
    echo_json(refund_saver_service.configure(runtime, app_id, body))


@refund_saver.command("requests")
@APP_OPTION
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10000))
def refund_saver_requests(app_id: UUID, limit: int) -> None:
    """The consumption requests received and what was answered, newest first, one JSON object a line."""
    for row in refund_saver_service.requests(load_runtime(), app_id, limit):
        click.echo(orjson.dumps(row).decode())
