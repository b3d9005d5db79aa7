"""The ``subledger`` command as an operator runs it, and the real server it starts."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import pytest

SUBLEDGER = [str(Path(sys.executable).with_name("subledger"))]


def run(env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(SUBLEDGER + list(args), env=env, capture_output=True, text=True, timeout=60)
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def env(tmp_path) -> dict:
    """The environment of an operator using the embedded default."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SUBLEDGER_")}
    environment["SUBLEDGER_DATA_DIR"] = str(tmp_path / "data")
    return environment


@pytest.fixture(params=["sqlite", "postgresql"])
def any_env(request, env) -> dict:
    """The environment on each engine (the PostgreSQL test database is already migrated)."""
    if request.param == "postgresql":
        return {**env, "SUBLEDGER_DATABASE_URL": request.getfixturevalue("postgres_database")}
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_refuses_an_unmigrated_database(env):
    result = run(env, "serve", "--port", str(free_port()), check=False)
    assert result.returncode != 0
    assert "subledger migrate" in result.stderr


def test_apps_create_list_and_rotate(env):
    run(env, "migrate")
    created = json.loads(run(env, "apps", "create", "--name", "My App").stdout)
    assert set(created) >= {"app_id", "secret_api_key"}
    listed = json.loads(run(env, "apps", "list").stdout)
    assert [app["app_id"] for app in listed] == [created["app_id"]]
    assert created["secret_api_key"] not in json.dumps(listed)

    rotated = json.loads(run(env, "keys", "rotate", "--app", created["app_id"]).stdout)
    assert rotated["secret_api_key"] != created["secret_api_key"]
    missing = run(env, "keys", "rotate", "--app", "00000000-0000-0000-0000-000000000000", check=False)
    assert missing.returncode != 0 and "no app" in missing.stderr


def test_migrate_is_idempotent(env):
    run(env, "migrate")
    run(env, "migrate")


def _wait_until_serving(process: subprocess.Popen, url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited: {process.stderr.read()}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("server did not start")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_answers_the_profile_api_end_to_end(any_env, workers):
    env = any_env
    run(env, "migrate")
    secret = json.loads(run(env, "apps", "create", "--name", "E2E").stdout)["secret_api_key"]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        SUBLEDGER + ["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", workers],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        _wait_until_serving(process, base + "/openapi.json")
        headers = {"Authorization": f"Api-Key {secret}", "adapty-customer-user-id": "e2e-user"}
        created = httpx.post(base + "/api/v2/server-side-api/profile/", headers=headers,
                             json={"custom_attributes": [{"key": "level", "value": 3}]})
        assert created.status_code == 200, created.text
        for _ in range(5):  # with several workers, any of them answers with the same profile
            fetched = httpx.get(base + "/api/v2/server-side-api/profile", headers=headers)
            assert fetched.json()["data"]["profile_id"] == created.json()["data"]["profile_id"]
        assert httpx.delete(base + "/api/v2/server-side-api/profile/", headers=headers).status_code == 204
    finally:
        process.terminate()
        process.wait(timeout=30)
