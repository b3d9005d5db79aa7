"""Throwaway PostgreSQL clusters of their own on loopback: a primary made with initdb, and
streaming replicas of it made with pg_basebackup, for the tests that restart, stop or fail
over a server (the shared test server must stay up for the tests running beside them)."""

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from support.serving import free_port


def _bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))), None)
    if found is None:
        raise RuntimeError(f"{name} not found: install PostgreSQL's server package")
    return found


def available() -> bool:
    try:
        _bin("initdb")
        return True
    except RuntimeError:
        return False


def _as_postgres(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    """PostgreSQL's programs refuse to run as root: as root, run them as the postgres user."""
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    return subprocess.run(command, check=True, capture_output=True, text=True, **kwargs)


class Cluster:
    def __init__(self, directory: Path, port: int):
        self.directory = directory
        self.port = port

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
        log = self.directory / "server.log"
        _as_postgres([_bin("pg_ctl"), "-D", str(self.directory / "data"), "-o", options, "-l", str(log), "-w", *args])

    def start(self) -> None:
        self._ctl("start")

    def stop(self) -> None:
        self._ctl("stop", "-m", "fast")

    def restart(self) -> None:
        self._ctl("restart", "-m", "fast")

    def promote(self) -> None:
        self._ctl("promote")


def _directory() -> Path:
    directory = Path(tempfile.mkdtemp(prefix="subledger-cluster-"))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres")
    return directory


@contextmanager
def primary() -> Iterator[Cluster]:
    """A new cluster (trust authentication on loopback, replication allowed), started."""
    cluster = Cluster(_directory(), free_port())
    _as_postgres([_bin("initdb"), "-D", str(cluster.directory / "data"), "-U", "postgres", "--auth=trust", "-N"])
    cluster.start()
    try:
        yield cluster
    finally:
        _stop_quietly(cluster)


@contextmanager
def replica(of: Cluster) -> Iterator[Cluster]:
    """A streaming replica of ``of`` (pg_basebackup -R), started: it follows the primary's WAL."""
    cluster = Cluster(_directory(), free_port())
    _as_postgres(
        [_bin("pg_basebackup"), "-h", "127.0.0.1", "-p", str(of.port), "-U", "postgres"]
        + ["-D", str(cluster.directory / "data"), "-R", "-X", "stream"]
    )
    cluster.start()
    try:
        yield cluster
    finally:
        _stop_quietly(cluster)


def _stop_quietly(cluster: Cluster) -> None:
    try:
        cluster.stop()
    except subprocess.CalledProcessError:
        pass  # stopped already
    shutil.rmtree(cluster.directory, ignore_errors=True)
