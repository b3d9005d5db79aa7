"""The ``subledger`` command: serve, migrate, apps and keys."""

import sys
from uuid import UUID

import click
import orjson

from subledger.apps import service as apps_service
from subledger.config import Settings
from subledger.core.db import NotMigrated
from subledger.core.runtime import Runtime


def _echo_json(value) -> None:
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


def _runtime(require_migrated: bool = True) -> Runtime:
    runtime = Runtime.from_settings(Settings())
    if require_migrated:
        try:
            runtime.db.require_migrated()
        except NotMigrated as exc:
            raise click.ClickException(str(exc)) from None
    return runtime


@click.group()
@click.version_option(package_name="subledger")
def main() -> None:
    """subledger: self-hosted backend for in-app subscriptions.

    The database comes from SUBLEDGER_DATABASE_URL (default: SQLite under
    SUBLEDGER_DATA_DIR, itself ./data by default).
    """


@main.command()
def migrate() -> None:
    """Create or upgrade the database schema to this version."""
    runtime = _runtime(require_migrated=False)
    before, head = runtime.db.schema_revision()
    runtime.db.migrate()
    click.echo(f"database at revision {head} (was {before or 'empty'})", err=True)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 256), help="Server processes.")
def serve(host: str, port: int, workers: int) -> None:
    """Serve the API."""
    import uvicorn

    settings = Settings()
    runtime = _runtime()
    runtime.db.dispose()
    uvicorn.run(
        "subledger.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level,
        server_header=False,
    )


@main.group()
def apps() -> None:
    """Apps: each has its own profiles, data and API keys."""


@apps.command("create")
@click.option("--name", required=True, help="A name to recognise the app by.")
def apps_create(name: str) -> None:
    """Create an app and print its secret API key (shown this once only)."""
    runtime = _runtime()
    _echo_json(apps_service.create_app(runtime.db, name, runtime.clock.now()))


@apps.command("list")
def apps_list() -> None:
    """List apps (never their secrets)."""
    _echo_json(apps_service.list_apps(_runtime().db))


@main.group()
def keys() -> None:
    """API keys."""


@keys.command("rotate")
@click.option("--app", "app_id", required=True, type=click.UUID, help="The app's id.")
def keys_rotate(app_id: UUID) -> None:
    """Issue a new secret API key for an app and revoke its earlier ones."""
    runtime = _runtime()
    try:
        _echo_json(apps_service.rotate_key(runtime.db, app_id, runtime.clock.now()))
    except apps_service.AppNotFound:
        raise click.ClickException(f"no app with id {app_id}") from None


if __name__ == "__main__":
    sys.exit(main())
