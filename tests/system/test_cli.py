"""The ``subledger`` command as an operator runs it, and the real server it starts."""

import json
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from support.apple_signing import AppleChain
from support.fake_google import FakeGoogle
from support.serving import free_port, operator_env, run, run_json, serving, shop
from support.serving import product as product_of

from subledger.core.dates import parse_datetime

pytestmark = pytest.mark.slow  # a system test: it starts processes (CI runs it with -m slow)


@pytest.fixture
def env(tmp_path) -> dict:
    return operator_env(tmp_path / "data")


@pytest.fixture(params=["sqlite", "postgresql"])
def any_env(request, tmp_path) -> dict:
    """The environment on each engine (the PostgreSQL test database is already migrated)."""
    if request.param == "postgresql":
        return operator_env(tmp_path / "data", request.getfixturevalue("postgresql_url"))
    return operator_env(tmp_path / "data")


def test_serve_refuses_an_unmigrated_database(env):
    result = run(env, "serve", "--port", str(free_port()), check=False)
    assert result.returncode != 0
    assert "subledger migrate" in result.stderr


def test_a_command_imports_only_the_features_it_uses(env):
    """Importing every feature (the stores' libraries, FastAPI) cost a second of each command."""
    run(env, "migrate")
    script = (
        "import sys\n"
        "from subledger.cli import main\n"
        "try:\n"
        "    main(['apps', 'list'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith(('subledger.', 'fastapi', 'stripe'))))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    loaded = result.stdout.splitlines()[-1]
    assert "subledger.apps.service" in loaded
    for unused in ("subledger.stores.apple.service", "subledger.purchases.service", "fastapi", "stripe"):
        assert f"'{unused}" not in loaded, unused


def test_apps_create_list_and_rotate(env):
    run(env, "migrate")
    created = run_json(env, "apps", "create", "--name", "My App")
    assert set(created) >= {"app_id", "secret_api_key"}
    too_long = run(env, "apps", "create", "--name", "n" * 256, check=False)
    assert too_long.returncode == 1 and "1 to 255 characters" in too_long.stderr
    listed = run_json(env, "apps", "list")
    assert [app["app_id"] for app in listed] == [created["app_id"]]
    assert created["secret_api_key"] not in json.dumps(listed)

    rotated = run_json(env, "keys", "rotate", "--app", created["app_id"])
    assert rotated["secret_api_key"] != created["secret_api_key"]
    assert run_json(env, "apps", "list")[0]["active_keys"] == 1
    graced = run_json(env, "keys", "rotate", "--app", created["app_id"], "--grace", "3600")
    ends = parse_datetime(graced["earlier_keys_work_until"]) - datetime.now(UTC)
    assert graced["revoked_keys"] == 1 and timedelta(minutes=59) < ends <= timedelta(hours=1)
    listed = run_json(env, "apps", "list")[0]
    assert listed["active_keys"] == 2 and graced["secret_api_key"].startswith(listed["key_prefix"])
    forever = run(env, "keys", "rotate", "--app", created["app_id"], "--grace", str(10**14), check=False)
    assert forever.returncode == 2 and "Invalid value for '--grace'" in forever.stderr
    missing = run(env, "keys", "rotate", "--app", "00000000-0000-0000-0000-000000000000", check=False)
    assert missing.returncode != 0 and "no app" in missing.stderr


def test_a_bad_setting_is_named_without_a_traceback(env):
    bad = {**env, "SUBLEDGER_MAX_BODY_BYTES": "lots", "SUBLEDGER_SERVE_WORKER": "maybe"}
    for command in (["migrate"], ["serve", "--port", str(free_port())], ["apps", "list"]):
        result = run(bad, *command, check=False)
        assert result.returncode != 0 and "Traceback" not in result.stderr
        assert "SUBLEDGER_MAX_BODY_BYTES: Input should be a valid integer" in result.stderr
        assert "SUBLEDGER_SERVE_WORKER: Input should be 'auto', 'on' or 'off'" in result.stderr


def test_migrate_is_idempotent(env):
    run(env, "migrate")
    run(env, "migrate")


def test_catalog_rates_and_verify_commands(env, tmp_path):
    run(env, "migrate")
    app = run_json(env, "apps", "create", "--name", "Shop")["app_id"]
    assert [level["access_level_id"] for level in run_json(env, "access-levels", "list", "--app", app)] == ["premium"]
    assert run_json(env, "access-levels", "create", "--app", app, "--id", "gold")["access_level_id"] == "gold"
    product = product_of(env, app, "m", "--access-level", "gold", "--period", "P1M")
    assert product["access_level_id"] == "gold"
    bad = run(
        env,
        *"products create --store app_store --product-id x --access-level silver --period P1M".split(),
        "--app",
        app,
        check=False,
    )
    assert bad.returncode != 0 and "paid_access_level_does_not_exist" in bad.stderr
    in_use = run(env, "access-levels", "delete", "--app", app, "--id", "gold", check=False)
    assert in_use.returncode != 0 and "access_level_in_use" in in_use.stderr
    assert [p["store_product_id"] for p in run_json(env, "products", "list", "--app", app)] == ["m"]
    run(env, "products", "delete", "--app", app, "--product", product["product_id"])
    run(env, "access-levels", "delete", "--app", app, "--id", "gold")
    default = run(env, "access-levels", "delete", "--app", app, "--id", "premium", check=False)
    assert default.returncode != 0 and "default_access_level" in default.stderr
    assert [level["access_level_id"] for level in run_json(env, "access-levels", "list", "--app", app)] == ["premium"]

    rates = tmp_path / "rates.csv"
    rates.write_text("currency,usd_per_unit,as_of\nISK,0.0072,2025-06-01\nEUR,1.10,2025-06-01\n")
    run(env, "rates", "load", str(rates))
    listed = {rate["currency"]: rate for rate in run_json(env, "rates", "list")}
    assert listed["ISK"] == {"currency": "ISK", "usd_per_unit": "0.0072", "as_of": "2025-06-01", "source": "loaded"}
    assert listed["GBP"]["source"] == "shipped"
    rates.write_text("currency,usd_per_unit,as_of\nJPY,0.0065,2025-06-01\nCHF,-1,2025-06-01\n")
    refused = run(env, "rates", "load", str(rates), check=False)
    assert refused.returncode != 0 and "line 3" in refused.stderr
    assert {rate["currency"]: rate for rate in run_json(env, "rates", "list")}["JPY"]["source"] == "shipped"

    verified = run(env, "verify")
    assert verified.returncode == 0 and "0 profile(s) differ" in verified.stderr
    pruned = {"events": 0, "forwards": 0, "idempotency_keys": 0, "store_notifications": 0, "refused_notifications": 0}
    assert run_json(env, "prune", "--older-than", "30") == pruned
    for days in ("0", "99999999"):  # the latter counts back past the year 1
        refused = run(env, "prune", "--older-than", days, check=False)
        assert refused.returncode == 2 and "Invalid value for '--older-than'" in refused.stderr


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_answers_the_api_end_to_end(any_env, workers):
    env = any_env
    run(env, "migrate")
    app = run_json(env, "apps", "create", "--name", "E2E")
    with serving(env, workers) as base:
        assert httpx.get(base + "/health").json()["status"] == "ok"
        headers = {"Authorization": f"Api-Key {app['secret_api_key']}", "adapty-customer-user-id": "e2e-user"}
        api = base + "/api/v2/server-side-api"
        created = httpx.post(
            api + "/profile/", headers=headers, json={"custom_attributes": [{"key": "level", "value": 3}]}
        )
        assert created.status_code == 200, created.text
        granted = httpx.post(
            api + "/purchase/profile/grant/access-level/", headers=headers, json={"access_level_id": "premium"}
        )
        assert granted.json()["data"]["access_levels"][0]["access_level_id"] == "premium"
        for _ in range(5):  # with several workers, any of them answers with the same profile
            fetched = httpx.get(api + "/profile", headers=headers)
            assert fetched.json()["data"]["profile_id"] == created.json()["data"]["profile_id"]
            assert fetched.json()["data"]["access_levels"] == granted.json()["data"]["access_levels"]
        assert httpx.delete(api + "/profile/", headers=headers).status_code == 204
        for _ in range(3):  # whichever process answers the scrape adds up every process's figures
            figures = httpx.get(base + "/metrics").text
            assert (
                'subledger_http_requests_total{method="GET",route="/api/v2/server-side-api/profile/",status="200"} 5.0'
                in figures
            )


def test_paywall_commands(env, tmp_path):
    run(env, "migrate")
    app = run_json(env, "apps", "create", "--name", "Paywalls")["app_id"]
    product = product_of(env, app, "m", "--access-level", "premium", "--period", "P1M")["product_id"]
    config = tmp_path / "config.json"
    config.write_text('{"en": {"title": "Go premium"}}')
    first = run_json(
        env, "paywalls", "create", "--app", app, "--title", "A", "--product", product, "--remote-config", str(config)
    )
    assert first["remote_configs"] == [{"locale": "en", "data": '{"title":"Go premium"}'}]
    second = run_json(env, "paywalls", "create", "--app", app, "--title", "B")
    edit = ["--title", "B2", "--product", product, "--web-purchase-url", "https://example.com/buy"]
    edited = run_json(env, "paywalls", "update", "--app", app, "--paywall", second["paywall_id"], *edit)
    assert (edited["title"], [p["product_id"] for p in edited["products"]]) == ("B2", [product])
    assert (edited["web_purchase_url"], edited["state"]) == ("https://example.com/buy", "draft")
    run(
        env,
        "audiences",
        "create",
        "--app",
        app,
        "--id",
        "fr",
        "--rules",
        '[{"field": "ip_country", "op": "eq", "value": "FR"}]',
    )
    test = run_json(
        env,
        "ab-tests",
        "create",
        "--app",
        app,
        "--name",
        "T",
        "--variation",
        f"{first['paywall_id']}:70",
        "--variation",
        f"{second['paywall_id']}:30",
    )
    odd_weight = ["--variation", f"{first['paywall_id']}:\u00b2", "--variation", f"{second['paywall_id']}:1"]
    refused = run(env, "ab-tests", "create", "--app", app, "--name", "U", *odd_weight, check=False)
    assert refused.returncode == 1 and "variations.0.weight" in refused.stderr
    placement = run_json(
        env,
        "placements",
        "set",
        "--app",
        app,
        "--id",
        "main",
        "--target",
        f'{{"audience_id": "fr", "paywall_id": "{second["paywall_id"]}"}}',
        "--target",
        f'{{"ab_test_id": "{test["ab_test_id"]}"}}',
    )
    assert [t["audience_id"] for t in placement["targets"]] == ["fr", None]
    refused = run(env, "paywalls", "archive", "--app", app, "--paywall", second["paywall_id"], check=False)
    assert refused.returncode != 0 and "paywall_in_use" in refused.stderr
    assert {p["title"]: p["state"] for p in run_json(env, "paywalls", "list", "--app", app)} == {
        "A": "live",
        "B2": "live",
    }
    metrics = run_json(env, "ab-tests", "metrics", "--app", app, "--test", test["ab_test_id"])
    assert [v["weight"] for v in metrics["variations"]] == [70, 30]
    assert len(run_json(env, "paywalls", "metrics", "--app", app)) == 4
    bad = run(env, "audiences", "create", "--app", app, "--id", "x", "--rules", "not json", check=False)
    assert bad.returncode != 0 and "not JSON" in bad.stderr
    rounded = '[{"field": "custom_attribute.n", "op": "eq", "value": 99999999999999999999}]'
    bad = run(env, "audiences", "create", "--app", app, "--id", "x", "--rules", rounded, check=False)
    assert bad.returncode != 0 and "64 bits wide" in bad.stderr


def test_stores_commands(env, tmp_path):
    run(env, "migrate")
    app = shop(env)["app_id"]
    root = tmp_path / "root.pem"
    root.write_bytes(AppleChain().root_pem)
    apple = run_json(
        env, "stores", "app-store", "--app", app, "--bundle-id", "com.example.app", "--root-certificate", str(root)
    )
    assert apple["settings"]["bundle_id"] == "com.example.app" and len(apple["settings"]["root_certificates"]) == 1
    key = tmp_path / "key.json"
    key.write_text(FakeGoogle().service_account())
    play = run_json(
        env, "stores", "play-store", "--app", app, "--package-name", "com.example.app", "--service-account", str(key)
    )
    assert play["push_path"].startswith(f"/stores/play-store/{app}/notifications/?token=")
    assert play["secrets"] == ["push_token", "service_account"] and "private_key" not in json.dumps(play)
    again = run_json(env, "stores", "play-store", "--app", app, "--package-name", "com.example.app")
    assert again["push_path"] == play["push_path"]  # the push token is made once
    bad = run(env, "stores", "app-store", "--app", app, "--root-certificate", str(key), check=False)
    assert bad.returncode != 0 and "certificate" in bad.stderr
    assert run(env, "stores", "notifications", "--app", app).stdout == ""
    assert run(env, "stores", "notifications", "--app", app, "--refused").stdout == ""


def _backed_up_users(directory) -> set[str]:
    copy = sqlite3.connect(directory / "subledger.db")
    try:
        return {user for (user,) in copy.execute("SELECT customer_user_id FROM profiles")}
    finally:
        copy.close()


def test_backup_copies_the_database_as_it_stands_while_writes_go_on(env, tmp_path):
    run(env, "migrate")
    app = shop(env)
    headers = {"Authorization": f"Api-Key {app['secret_api_key']}"}
    acknowledged, failures, stop = [], [], threading.Event()
    with serving(env) as base:

        def write() -> None:
            with httpx.Client(base_url=base + "/api/v2/server-side-api", headers=headers) as client:
                while not stop.is_set():
                    user = f"user-{len(acknowledged)}"
                    response = client.post("/profile/", headers={"adapty-customer-user-id": user})
                    (acknowledged if response.status_code == 200 else failures).append(user)

        writer = threading.Thread(target=write)
        writer.start()
        while len(acknowledged) < 20:
            time.sleep(0.01)
        before = list(acknowledged)
        during = run(env, "backup", str(tmp_path / "during"))
        time.sleep(0.2)
        stop.set()
        writer.join(timeout=30)
        # Writes stopped: the latest are still in the write-ahead log, which a copy of the file misses.
        run(env, "backup", str(tmp_path / "after"))
    assert failures == []
    assert "database copied" in during.stderr and "secret key copied" in during.stderr
    assert set(before) <= _backed_up_users(tmp_path / "during") <= set(acknowledged)
    assert _backed_up_users(tmp_path / "after") == set(acknowledged)
    assert (tmp_path / "during" / "secret.key").read_bytes() == (tmp_path / "data" / "secret.key").read_bytes()
    restored = operator_env(tmp_path / "during")
    assert "0 profile(s) differ" in run(restored, "verify").stderr
    assert run_json(restored, "apps", "list")[0]["app_id"] == app["app_id"]

    again = run(env, "backup", str(tmp_path / "during"), check=False)
    assert again.returncode != 0 and "new directory" in again.stderr


def test_compact_gives_back_free_space_in_the_pages_new_databases_get(env, tmp_path):
    """A database made with SQLite's default 4 KiB pages, with space left free, is rewritten
    smaller in 8 KiB pages; while a server uses it, compact refuses and changes nothing."""
    database = tmp_path / "data" / "subledger.db"
    database.parent.mkdir(parents=True)
    with closing(sqlite3.connect(database)) as older:
        older.execute("PRAGMA page_size=4096")
        older.execute("CREATE TABLE made_before (x)")  # the page size is fixed once a page is written
    run(env, "migrate")
    app = shop(env)
    with closing(sqlite3.connect(database)) as conn:
        conn.execute("DROP TABLE made_before")
        conn.execute("CREATE TABLE scratch AS SELECT randomblob(4000000) AS x")
        conn.execute("DROP TABLE scratch")
        conn.commit()
        assert conn.execute("PRAGMA page_size").fetchone() == (4096,)
    before = database.stat().st_size
    with serving(env) as base:
        refused = run(env, "compact", check=False)
        assert refused.returncode != 0 and "stop the servers" in refused.stderr
        assert httpx.get(base + "/health").status_code == 200
    assert database.stat().st_size == before
    done = run(env, "compact")
    assert "now" in done.stderr and database.stat().st_size < before - 3_000_000
    with closing(sqlite3.connect(database)) as conn:
        assert conn.execute("PRAGMA page_size").fetchone() == (8192,)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert run_json(env, "apps", "list")[0]["app_id"] == app["app_id"]


def test_backup_on_postgresql_points_to_its_own_tools(postgresql_url, tmp_path):
    env = operator_env(tmp_path / "data", postgresql_url)
    refused = run(env, "backup", str(tmp_path / "backup"), check=False)
    assert refused.returncode != 0 and "pg_dump" in refused.stderr
    assert not (tmp_path / "backup").exists()
