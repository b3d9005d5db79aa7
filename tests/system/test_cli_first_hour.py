"""What a new operator runs into in the first hour with the command line, each fixed."""

import csv
import io
import json
import uuid

import pytest
from support.purchases import subscription
from support.serving import operator_env, run, run_json

# Each test runs the command line in processes of its own.
pytestmark = pytest.mark.slow


@pytest.fixture
def env(runtime, sqlite_url, tmp_path):
    return operator_env(tmp_path, sqlite_url)


@pytest.fixture(params=["sqlite"])
def database_url(request):  # the command line behaves the same on both engines: one is enough here
    return request.getfixturevalue("sqlite_url")


@pytest.fixture
def shop(api, clock):
    api.product("monthly", "premium", "P1M")
    clock.current = clock.current.replace(year=2025, month=4, day=15)
    for n, month in enumerate(("01", "02", "03")):  # three monthly cohorts of payers
        api.create(f"u{n}")
        body = subscription(
            store_transaction_id=f"t{n}",
            store_original_transaction_id=f"o{n}",
            purchased_at=f"2025-{month}-05T10:00:00.000000+0000",
            originally_purchased_at=f"2025-{month}-05T10:00:00.000000+0000",
            expires_at="2025-05-05T10:00:00.000000+0000",
        )
        assert api.set_transaction(f"u{n}", **body).status_code == 200
    return api


def test_cohorts_of_different_ages_line_up_as_a_table_and_as_csv(shop, env):
    window = ["--start", "2025-01-01", "--end", "2025-04-15"]
    table = run(env, "metrics", "--app", shop.app_id, "--cohorts", *window).stdout.splitlines()
    assert len(table) == 4 and all(line.strip() for line in table)
    rows = list(
        csv.reader(io.StringIO(run(env, "metrics", "--app", shop.app_id, "--cohorts", "--csv", *window).stdout))
    )
    assert len({len(row) for row in rows}) == 1  # every row as wide as the header
    assert rows[0][:3] == ["cohort", "subscriptions", "month_0"]


@pytest.mark.parametrize(
    "command",
    [
        ["products", "create", "--app", "{app}", "--store", "app_store", "--product-id", "p", "--period", "P1M"],
        ["access-levels", "create", "--app", "{app}", "--id", "gold"],
        ["metrics", "--app", "{app}"],
        ["events", "list", "--app", "{app}"],
        ["export", "--app", "{app}", "profiles"],
        ["products", "list", "--app", "{app}"],
    ],
)
def test_an_app_that_does_not_exist_is_named_and_the_command_fails(env, runtime, command):
    missing = str(uuid.uuid4())
    result = run(env, *(missing if arg == "{app}" else arg for arg in command), check=False)
    assert result.returncode != 0 and f"no app with id {missing}" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unmigrated_database_is_named_by_its_path(tmp_path):
    elsewhere = operator_env(tmp_path / "elsewhere")
    result = run(elsewhere, "apps", "list", check=False)
    assert result.returncode != 0
    assert str((tmp_path / "elsewhere" / "subledger.db").resolve()) in result.stderr
    assert "subledger migrate" in result.stderr


def _default_place(tmp_path):
    """An operator who sets no data directory, with their own user data directory, and two
    directories to run commands in."""
    env = {key: value for key, value in operator_env(tmp_path).items() if key != "SUBLEDGER_DATA_DIR"}
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir()
    there.mkdir()
    return env, here, there


def test_the_data_is_found_in_one_place_wherever_a_command_runs(tmp_path):
    env, here, there = _default_place(tmp_path)
    migrated = run(env, "migrate", cwd=here)
    database = tmp_path / "xdg" / "subledger" / "subledger.db"
    assert str(database) in migrated.stderr
    app = run_json(env, "apps", "create", "--name", "Here")
    assert [found["app_id"] for found in json.loads(run(env, "apps", "list", cwd=there).stdout)] == [app["app_id"]]
    assert not (here / "data").exists() and not (there / "data").exists()


def test_a_database_an_earlier_version_made_under_data_is_pointed_at(tmp_path):
    env, here, _ = _default_place(tmp_path)
    earlier = operator_env(here / "data")
    run(earlier, "migrate")
    app = run_json(earlier, "apps", "create", "--name", "Earlier")

    for command in (["migrate"], ["apps", "list"]):
        refused = run(env, *command, check=False, cwd=here)
        assert refused.returncode != 0
        assert f"{(here / 'data' / 'subledger.db').resolve()}" in refused.stderr
        assert f"SUBLEDGER_DATA_DIR={(here / 'data').resolve()}" in refused.stderr
    kept = run_json({**env, "SUBLEDGER_DATA_DIR": str((here / "data").resolve())}, "apps", "list")
    assert [found["app_id"] for found in kept] == [app["app_id"]]


def test_events_one_line_each_for_a_user_named_as_the_app_names_them(shop, env):
    lines = run(env, "events", "list", "--app", shop.app_id, "--profile", "u1", "--oneline").stdout.splitlines()
    assert lines and all("u1" in line for line in lines)
    assert any("subscription_started" in line and "monthly" in line for line in lines)
    bogus = run(env, "events", "list", "--app", shop.app_id, "--type", "bogus", check=False)
    assert bogus.returncode != 0 and "bogus" in bogus.stderr
    nobody = run(env, "events", "list", "--app", shop.app_id, "--profile", "nobody", check=False)
    assert nobody.returncode != 0 and "no profile 'nobody'" in nobody.stderr
    by_id = run_json(
        env, "events", "list", "--app", shop.app_id, "--profile", shop.get("u1").json()["data"]["profile_id"]
    )
    assert {event["customer_user_id"] for event in by_id["data"]} == {"u1"}


def test_a_product_is_deleted_by_its_store_product_id(shop, env):
    shop.product("monthly", "premium", "P1M", store="play_store")
    ambiguous = run(env, "products", "delete", "--app", shop.app_id, "--product", "monthly", check=False)
    assert ambiguous.returncode != 0 and "--store" in ambiguous.stderr
    run(env, "products", "delete", "--app", shop.app_id, "--product", "monthly", "--store", "play_store")
    left = run_json(env, "products", "list", "--app", shop.app_id)
    assert [(p["store"], p["store_product_id"]) for p in left] == [("app_store", "monthly")]
    missing = run(env, "products", "delete", "--app", shop.app_id, "--product", "nope", check=False)
    assert missing.returncode != 0 and "no product 'nope'" in missing.stderr
    assert json.loads(run(env, "products", "list", "--app", shop.app_id).stdout) == left
