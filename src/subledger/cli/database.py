"""The database's upkeep: migrate, back up, compact, exchange rates, prune, verify."""

import shutil
import sqlite3
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import IO
from uuid import UUID

import click
import orjson

from subledger.apps import service as apps_service
from subledger.catalog import service as catalog_service
from subledger.cli.common import CENTURY_DAYS, echo_json, load_runtime, not_migrated
from subledger.config import DATABASE_FILE
from subledger.core import idempotency
from subledger.core.db import NotMigrated
from subledger.core.runtime import Runtime
from subledger.core.secrets import SECRET_KEY_FILE
from subledger.events import service as events_service
from subledger.metrics import upkeep as metrics_upkeep
from subledger.purchases import repricing, verification
from subledger.stores import service as stores_service


@click.command()
def migrate() -> None:
    """Create or upgrade the database schema to this version."""
    runtime = load_runtime(require_migrated=False)
    before, head = runtime.db.schema_revision()
    if before is None and runtime.settings.earlier_database():  # not a second, empty database beside it
        raise not_migrated(runtime, NotMigrated(f"The database {runtime.db.location} is empty."))
    runtime.db.migrate()
    click.echo(f"database {runtime.db.location} at revision {head} (was {before or 'empty'})", err=True)
    try:
        moved = _repricing(runtime, lambda progress: repricing.reprice(runtime, progress))
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


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def backup(directory: Path) -> None:
    """Copy the embedded database, as it stands, into DIRECTORY while the server goes on.

    DIRECTORY becomes a data directory of its own: the database, and the generated
    secret key that opens its sealed secrets. Restore by pointing SUBLEDGER_DATA_DIR at
    it (or copying both files back) with the servers stopped.
    """
    runtime = load_runtime()
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


@click.command()
def compact() -> None:
    """Give the file system back the embedded database's free space (after a migration that
    rebuilt its tables, or a prune), in pages of the size new databases get.

    It rewrites the whole file and needs it to itself, and as much free disk again: stop the
    servers and workers first.
    """
    runtime = load_runtime()
    if not runtime.db.is_sqlite:
        raise click.ClickException("on PostgreSQL, VACUUM FULL (or pg_repack) gives space back")
    try:
        before, after = runtime.db.compact()
    except sqlite3.OperationalError as exc:
        raise click.ClickException(f"{exc}: stop the servers and workers using it, then try again") from None
    click.echo(f"database {runtime.db.location}: {before / 2**20:,.1f} MiB, now {after / 2**20:,.1f} MiB", err=True)


@click.group()
def rates() -> None:
    """Exchange rates to USD (a dated table ships with subledger; loaded rates override it)."""


@rates.command("load")
@click.argument("csv_file", type=click.File("r"))
def rates_load(csv_file: IO[str]) -> None:
    """Load a CSV with the columns currency,usd_per_unit,as_of."""
    runtime = load_runtime()
    try:
        text = csv_file.read()
        count = _repricing(runtime, lambda progress: repricing.load_rates(runtime, text, progress))
    except ValueError as exc:
        raise click.ClickException(f"{csv_file.name}: {exc}; nothing was loaded") from None
    click.echo(f"loaded {count} rates", err=True)
    _rebuild_metrics(runtime)  # only after an upgrade from a version that kept no rates, only their digest


@rates.command("list")
def rates_list() -> None:
    echo_json(catalog_service.list_rates(load_runtime()))


@click.command()
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
    runtime = load_runtime()
    before = runtime.clock.now() - timedelta(days=days)
    events = events_service.prune(runtime, before, app_id)
    forwards = events_service.prune_forwards(runtime, before, app_id)
    keys = idempotency.prune(runtime.db, runtime.clock.now())
    pruned = {"events": events, "forwards": forwards, "idempotency_keys": keys}
    echo_json({**pruned, **stores_service.prune(runtime, before, app_id)})


@click.command()
@click.option("--app", "app_id", type=click.UUID, default=None, help="Only this app's profiles.")
@click.option("--fix", is_flag=True, help="Store the recomputed state where it differs.")
def verify(app_id: UUID | None, fix: bool) -> None:
    """Recompute every profile and each app's metrics from the ledger and report any difference
    (exit 1 when one is left)."""
    runtime = load_runtime()
    if repricing.repricing(runtime):
        raise click.ClickException("new exchange rates are still being applied: `subledger migrate` finishes that")
    differences = 0
    for difference in verification.verify(runtime, app_id=app_id, fix=fix):
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
