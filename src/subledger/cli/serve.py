"""The API server. Nothing imported here may load prometheus_client: ``protocol.serve`` names the
directory of the processes' figures before the server's first process loads it."""

import click

from subledger.cli.common import load_runtime
from subledger.core import protocol


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 256), help="Server processes.")
def serve(host: str, port: int, workers: int) -> None:
    """Serve the API."""
    runtime = load_runtime()
    settings = runtime.settings
    runtime.db.dispose()
    if settings.is_embedded and workers > 1:
        click.echo(
            "note: on SQLite the worker processes take turns at one write lock: more workers serve "
            "more reads, not more writes (see the README).",
            err=True,
        )
    protocol.serve("subledger.app:create_app", host, port, workers, settings.log_level)
