"""A real PgBouncer in transaction pooling mode in front of the test PostgreSQL server."""

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import make_url

from support.serving import free_port


def available() -> bool:
    return shutil.which("pgbouncer") is not None


@contextmanager
def transaction_pooler(postgres_url: str, server_connections: int = 2) -> Iterator[str]:
    """Start PgBouncer (``pool_mode = transaction``, ``server_connections`` per database and user)
    in front of the server ``postgres_url`` names; yield the same URL through the pooler."""
    url = make_url(postgres_url)
    port = free_port()
    # PgBouncer refuses to run as root: it drops to the user PostgreSQL runs as, which must
    # be able to write its directory.
    directory = Path(tempfile.mkdtemp(prefix="subledger-pgbouncer-"))
    as_root = os.geteuid() == 0
    if as_root:
        shutil.chown(directory, "postgres")
    config = directory / "pgbouncer.ini"
    users = directory / "users.txt"
    users.write_text(f'"{url.username}" ""\n')
    config.write_text(
        "[databases]\n"
        f"* = host={url.host} port={url.port or 5432}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {users}\n"
        f"pool_mode = transaction\ndefault_pool_size = {server_connections}\nmax_client_conn = 500\n"
        f"logfile = {directory / 'pgbouncer.log'}\n"
    )
    command = ["pgbouncer", *(["-u", "postgres"] if as_root else []), str(config)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(port, process)
        yield url.set(port=port).render_as_string(hide_password=False)
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)


def _wait_for(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pgbouncer exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("pgbouncer did not start listening")
