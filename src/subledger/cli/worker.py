"""The webhook worker: deliveries and time-based events."""

import signal
import threading

import click

from subledger import worker as delivery
from subledger.cli.common import runtime_when_reachable
from subledger.core.runtime import DELIVERIES_IN_FLIGHT


@click.command()
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
    runtime = runtime_when_reachable()
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
