"""Abuse against the real `subledger serve`: slow clients, and secrets kept out of the logs."""

import socket
import subprocess
import time

import httpx
import pytest
from support.fake_google import FakeGoogle
from support.serving import SUBLEDGER, free_port, operator_env, run, run_json, serving, shop

pytestmark = pytest.mark.slow  # a system test: it starts processes (CI runs it with -m slow)

SLOW_CLIENTS = 200
BASE = "/api/v2/server-side-api"


@pytest.fixture
def env(tmp_path):
    env = operator_env(tmp_path / "data")
    run(env, "migrate")
    return env


def _transaction(n: int) -> dict:
    return {
        "purchase_type": "one_time_purchase",
        "store": "app_store",
        "store_product_id": "coins",
        "store_transaction_id": f"t{n}",
        "store_original_transaction_id": f"t{n}",
        "price": {"country": "US", "currency": "USD", "value": 0.99},
        "purchased_at": "2025-01-01T00:00:00.000000+0000",
    }


def test_slow_clients_do_not_starve_the_others(env):
    """Clients that send headers, or a write's body, a byte at a time hold nothing but their socket:
    the body is read in full before a database transaction starts."""
    app = shop(env)
    headers = {"Authorization": f"Api-Key {app['secret_api_key']}"}
    with serving(env) as base:
        port = int(base.rsplit(":", 1)[1])
        slow = []
        try:
            for n in range(SLOW_CLIENTS):
                sock = socket.create_connection(("127.0.0.1", port))
                if n % 2:  # headers that never end
                    sock.sendall(b"GET /api/v2/server-side-api/profile/ HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                else:  # a write whose body never arrives in full
                    sock.sendall(
                        f"POST {BASE}/purchase/set/transaction/ HTTP/1.1\r\nHost: x\r\n"
                        f"Authorization: Api-Key {app['secret_api_key']}\r\nadapty-customer-user-id: slow\r\n"
                        "Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n{".encode()
                    )
                slow.append(sock)
            with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
                for n in range(20):
                    user = {"adapty-customer-user-id": f"u{n}"}
                    assert client.post(f"{BASE}/profile/", headers=user, json={}).status_code == 200
                    bought = client.post(f"{BASE}/purchase/set/transaction/", headers=user, json=_transaction(n))
                    assert bought.status_code == 200, bought.text
                    assert client.get(f"{BASE}/profile/", headers=user).json()["data"]["non_subscriptions"]
        finally:
            for sock in slow:
                sock.close()


def _until_closed(sock: socket.socket) -> bytes:
    sock.settimeout(10)
    received = b""
    while chunk := sock.recv(4096):
        received += chunk
    return received


def test_a_request_that_does_not_arrive_in_time_gets_408_and_its_connection_closed(env):
    """Connections that send nothing, or headers or a body that never end, are cut off once
    the read timeout has passed; a kept-alive connection idle between requests is not."""
    env = {**env, "SUBLEDGER_REQUEST_READ_TIMEOUT_SECONDS": "1"}
    app = shop(env)
    headers = {"Authorization": f"Api-Key {app['secret_api_key']}", "adapty-customer-user-id": "u"}
    with serving(env) as base:
        port = int(base.rsplit(":", 1)[1])
        silent, slow_headers, slow_body = (socket.create_connection(("127.0.0.1", port)) for _ in range(3))
        slow_headers.sendall(b"GET /api/v2/server-side-api/profile/ HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        slow_body.sendall(
            f"POST {BASE}/profile/ HTTP/1.1\r\nHost: x\r\nAuthorization: Api-Key {app['secret_api_key']}\r\n"
            "adapty-customer-user-id: slow\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{".encode()
        )
        with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
            assert client.post(f"{BASE}/profile/", json={}).status_code == 200
            time.sleep(1.5)  # longer than the read timeout, shorter than keep-alive's 5 s
            assert client.get(f"{BASE}/profile/").status_code == 200
            for sock in (silent, slow_headers, slow_body):
                assert _until_closed(sock).startswith(b"HTTP/1.1 408 "), sock
                sock.close()
            slow = {**headers, "adapty-customer-user-id": "slow"}
            assert client.get(f"{BASE}/profile/", headers=slow).status_code == 404  # nothing of it was written


def test_secrets_never_reach_the_logs(env, tmp_path):
    """The server's and the CLI's output at debug level holds no API key, webhook secret,
    Authorization value or store key, even when requests fail."""
    env = {**env, "SUBLEDGER_LOG_LEVEL": "debug"}
    app = shop(env)
    api_key = app["secret_api_key"]
    stripe_key, webhook_secret = "sk_test_secret_0123456789", "whsec_secret_0123456789"
    configured = run(
        env, "stores", "stripe", "--app", app["app_id"], "--secret-key", stripe_key, "--webhook-secret", webhook_secret
    )
    key_file = tmp_path / "play.json"
    key_file.write_text(FakeGoogle().service_account())
    play = run_json(
        env,
        "stores",
        "play-store",
        "--app",
        app["app_id"],
        "--package-name",
        "com.example.app",
        "--service-account",
        str(key_file),
    )
    push_token = play["push_path"].split("token=", 1)[1]
    port = free_port()
    server = subprocess.Popen(
        [*SUBLEDGER, "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(base + "/openapi.json", timeout=1)
                break
            except httpx.TransportError:
                subprocess.run(["sleep", "0.1"])
        with httpx.Client(base_url=base, timeout=10) as client:
            ok = {"Authorization": f"Api-Key {api_key}", "adapty-customer-user-id": "u"}
            assert client.post(f"{BASE}/profile/", headers=ok, json={}).status_code == 200
            wrong = {"Authorization": f"Api-Key {api_key}x", "adapty-customer-user-id": "u"}
            assert client.get(f"{BASE}/profile/", headers=wrong).status_code == 401
            signed = {"Stripe-Signature": f"t=1,v1={webhook_secret}"}
            assert (
                client.post(f"/stores/stripe/{app['app_id']}/webhook/", headers=signed, content=b"{}").status_code
                == 400
            )
            assert client.post(f"{BASE}/purchase/set/transaction/", headers=ok, content=b"{").status_code == 400
            assert client.post(play["push_path"], content=b"{}").status_code == 400  # a push Play never sent
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    listed = run_json(env, "apps", "list")
    logged = output + configured.stdout + configured.stderr + str(listed)
    assert "GET /api/v2/server-side-api/profile/" in output  # the access log is on, and was read
    assert f"POST /stores/play-store/{app['app_id']}/notifications/ " in output  # logged, without its query
    for secret in (api_key, stripe_key, webhook_secret, push_token):
        assert secret not in logged
