"""Running the real ``subledger`` command and server from tests."""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

SUBLEDGER = [str(Path(sys.executable).with_name("subledger"))]


def run(env: dict, *args: str, check: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(SUBLEDGER + list(args), env=env, capture_output=True, text=True, timeout=120, cwd=cwd)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def run_json(env: dict, *args: str):
    return json.loads(run(env, *args).stdout)


def product(env: dict, app_id: str, store_product_id: str, *options: str, store: str = "app_store") -> dict:
    """``subledger products create`` for an app: ``options`` as on the command line."""
    return run_json(
        env, "products", "create", "--app", app_id, "--store", store, "--product-id", store_product_id, *options
    )


def shop(env: dict, name: str = "Shop", levels: tuple[str, ...] = ()) -> dict:
    """An app selling ``monthly`` (premium, P1M) on the App Store, made with the CLI, with ``levels``
    besides the premium every app has; its create output."""
    app = run_json(env, "apps", "create", "--name", name)
    for level in levels:
        run(env, "access-levels", "create", "--app", app["app_id"], "--id", level)
    product(env, app["app_id"], "monthly", "--access-level", "premium", "--period", "P1M")
    return app


def operator_env(data_dir: Path, database_url: str | None = None) -> dict:
    """The environment of an operator: the embedded default, or the given database."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SUBLEDGER_")}
    environment["SUBLEDGER_WEBHOOK_ALLOW_PRIVATE_NETWORKS"] = "1"  # the tests' receivers are on loopback
    if pooling := os.environ.get("SUBLEDGER_DATABASE_TRANSACTION_POOLING"):  # the database is behind PgBouncer
        environment["SUBLEDGER_DATABASE_TRANSACTION_POOLING"] = pooling
    environment["SUBLEDGER_DATA_DIR"] = str(data_dir)
    if database_url:
        environment["SUBLEDGER_DATABASE_URL"] = database_url
    return environment


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving(env: dict, workers: int = 1):
    """``subledger serve`` on a free loopback port; yields its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # Its log goes to a file: a pipe nobody reads fills up, and then the server stalls on a write.
    log = tempfile.TemporaryFile(mode="w+")
    process = subprocess.Popen(
        SUBLEDGER + ["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise AssertionError(f"server exited: {log.read()}")
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise AssertionError("server did not start") from None
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
