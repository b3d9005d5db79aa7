"""Scale benchmark: GET profile and set transaction on a big database against a small one,
the analytics queries on the big one, its size on disk, and the server's memory.

    python bench/seed.py --database-url sqlite:////tmp/big.db --profiles 1000000   # once
    python bench/scale.py --database-url sqlite:////tmp/big.db --profiles 1000000

The small database (2,000 profiles, the same histories) is made by the same seeder,
in a temporary SQLite file unless --small-database-url names an empty database
(on PostgreSQL, compare with PostgreSQL). Both are served by `subledger serve`'s app under
uvicorn with production settings and loaded with wrk; results go to
bench/results/scale-<engine>.json and print as a table.
"""

import argparse
import json
import os
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import httpx
import sqlalchemy
from run import HERE, rss_mb, serve, wrk
from seed import seed, seeded_app_key
from support.serving import operator_env

from subledger.apps import service as apps_service
from subledger.config import Settings
from subledger.core.runtime import Runtime
from subledger.dashboard import service as dashboard_service

SMALL = 2000


def database_size_mb(rt: Runtime) -> float:
    if rt.db.is_sqlite:
        path = Path(rt.settings.sqlalchemy_url.removeprefix("sqlite:///"))
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 2**20
    with rt.db.read() as conn:
        return conn.execute(sqlalchemy.text("SELECT pg_database_size(current_database())")).scalar() / 2**20


def load(url: str, data_dir: Path, key: str, profiles: int, options) -> dict:
    env = {**operator_env(data_dir, url), "SUBLEDGER_SERVE_WORKER": "off"}
    process, base = serve(env, options.workers, "subledger.app:create_app")
    try:
        found = {}
        for scenario in ("get_profile", "set_transaction"):
            wrk(base, scenario, [key, str(profiles)], 2, options.connections)  # warm-up
            found[scenario] = wrk(base, scenario, [key, str(profiles)], options.duration, options.connections)
        found["worker_rss_mb"] = rss_mb(process)
        return found
    finally:
        process.terminate()
        process.wait(timeout=30)


def timed(call, *args) -> float:
    started = time.perf_counter()
    call(*args)
    return round(time.perf_counter() - started, 3)


def analytics(url: str, data_dir: Path, key: str, exports_too: bool = True) -> dict:
    """Seconds each analytics query takes through HTTP (metrics) or the service (dashboard search)."""
    # The Export Analytics API's limit of 2 requests a second is lifted: each answer is timed alone.
    env = {
        **operator_env(data_dir, url),
        "SUBLEDGER_SERVE_WORKER": "off",
        "SUBLEDGER_CLIENT_API_RATE_PER_SECOND": "100",
    }
    process, base = serve(env, 1, "subledger.app:create_app")
    rt = Runtime.from_settings(Settings(database_url=url, data_dir=data_dir))
    app_id = uuid.UUID(apps_service.list_apps(rt.db, rt.clock.now())[0]["app_id"])
    try:
        client = httpx.Client(base_url=base, headers={"Authorization": f"Api-Key {key}"}, timeout=600)

        def metrics(query: str) -> None:
            assert client.get(f"/api/admin/v1/metrics/?{query}").status_code == 200

        email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
        dashboard_service.create_operator(rt, email, "bench-password-1")
        operator = dashboard_service.take_attempt(rt, email, "127.0.0.1")
        assert operator is not None
        token = dashboard_service.open_session(rt, operator, "127.0.0.1")
        browser = httpx.Client(base_url=base, cookies={"subledger_session": token}, timeout=600, follow_redirects=True)

        def page(path: str) -> None:
            assert browser.get(path).status_code == 200

        def export(operation: str, body: dict) -> None:
            assert client.post(f"/api/v1/client-api/{operation}/", json=body).status_code == 200

        year = {"date": [str(date.today() - timedelta(days=364)), str(date.today())]}
        by_day = {"filters": year, "period_unit": "day"}
        # The Export Analytics API reads the whole ledger: minutes a query at a million profiles.
        exports = (
            {
                **{
                    f"export: {chart}, a year by day": timed(export, "metrics/analytics", {"chart_id": chart, **by_day})
                    for chart in ("revenue", "subscriptions_active", "mrr", "arpu")
                },
                "export: revenue by country, a year by day": timed(
                    export, "metrics/analytics", {"chart_id": "revenue", **by_day, "segmentation": "country"}
                ),
                "export: cohorts by month": timed(export, "metrics/cohort", {"filters": year}),
                "export: conversion paid to 2nd period": timed(
                    export, "metrics/conversion", {**by_day, "from_period": "1", "to_period": "2"}
                ),
                "export: funnel": timed(export, "metrics/funnel", by_day),
                "export: LTV": timed(export, "metrics/ltv", by_day),
                "export: retention": timed(export, "metrics/retention", by_day),
            }
            if exports_too
            else {}
        )
        return {
            **exports,
            "metrics: 30 days by day": timed(metrics, "period=day"),
            "metrics: 12 weeks": timed(metrics, "period=week"),
            "metrics: 12 months": timed(metrics, "period=month"),
            "metrics: 1000 days": timed(metrics, f"period=day&start={date.today() - timedelta(days=999)}"),
            "metrics: 12 months in one country": timed(metrics, "period=month&country=FR"),
            "dashboard: overview page": timed(page, f"/dashboard/apps/{app_id}/"),
            "dashboard: a profile's page": timed(page, f"/dashboard/apps/{app_id}/profiles/?q=seed-424242"),
            "dashboard: customers list": timed(page, f"/dashboard/apps/{app_id}/profiles/"),
            "dashboard: customers list, churned": timed(page, f"/dashboard/apps/{app_id}/profiles/?status=churned"),
            "search: customer_user_id": timed(dashboard_service.search_profiles, rt, app_id, "seed-123456"),
            "search: a customer_user_id prefix": timed(dashboard_service.search_profiles, rt, app_id, "seed-12345"),
            "search: transaction id": timed(dashboard_service.search_profiles, rt, app_id, "seed-654321-3"),
        }
    finally:
        process.terminate()
        process.wait(timeout=30)
        dashboard_service.delete_operator(rt, email)
        rt.db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True, help="the big database (seeded by bench/seed.py)")
    parser.add_argument("--profiles", type=int, required=True, help="how many profiles it was seeded with")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--small-database-url", default=None, help="an empty database for the small one")
    parser.add_argument("--no-export", action="store_true", help="leave out the Export Analytics API's queries")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        big = Runtime.from_settings(Settings(database_url=options.database_url, data_dir=data_dir))
        big_key = seeded_app_key(big)
        size = database_size_mb(big)
        big.db.dispose()

        small_url = options.small_database_url or f"sqlite:///{data_dir / 'small.db'}"
        small = Runtime.from_settings(Settings(database_url=small_url, data_dir=data_dir))
        small.db.migrate()
        small_key = seed(small, SMALL, 10)["secret_api_key"]
        small.db.dispose()

        results = {
            "big": load(options.database_url, data_dir, big_key, options.profiles, options),
            "small": load(small_url, data_dir, small_key, SMALL, options),
            "analytics_s": analytics(options.database_url, data_dir, big_key, exports_too=not options.no_export),
            "database_mb": round(size, 1),
            "database_mb_per_million_profiles": round(size * 1_000_000 / options.profiles, 1),
        }

    engine = "sqlite" if big.db.is_sqlite else "postgresql"
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / f"scale-{engine}.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    for scenario in ("get_profile", "set_transaction"):
        b, s = results["big"][scenario], results["small"][scenario]
        print(
            f"{scenario}: {s['rps']:.0f} req/s on {SMALL} profiles, {b['rps']:.0f} on {options.profiles} "
            f"({s['rps'] / b['rps']:.2f}x slower); p99 {s['p99_ms']:.1f} -> {b['p99_ms']:.1f} ms"
        )
    print(f"cpus: {os.cpu_count()}")


if __name__ == "__main__":
    main()
