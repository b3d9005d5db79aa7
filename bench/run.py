"""HTTP load benchmark: wrk on loopback against `subledger serve` with production settings.

    python bench/run.py --engine sqlite        # or postgresql (needs the server on 127.0.0.1:5432)
    python bench/run.py --engine postgresql --pgbouncer   # the server reaches it through PgBouncer

For each scenario it reports requests per second and p50/p99 latency at full
load, then p99 at half of that rate (paced with wrk's per-connection delay).
The ceiling is the same server stack answering a fixed JSON body with no
database. Results go to bench/results/http-<engine>.json and print as a table.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))
from scratch import scratch_database, settle_statistics  # noqa: E402
from support.pgbouncer import transaction_pooler  # noqa: E402
from support.serving import free_port, operator_env, run, shop  # noqa: E402

from subledger.config import Settings  # noqa: E402
from subledger.core.addressing import ProfileRef  # noqa: E402
from subledger.core.runtime import Runtime  # noqa: E402
from subledger.currencies import service as currencies_service  # noqa: E402
from subledger.currencies.schemas import TransactionIn as CurrencyTransactionIn  # noqa: E402
from subledger.profiles import service as profiles_service  # noqa: E402
from subledger.profiles.schemas import ProfileFields  # noqa: E402
from subledger.purchases import service as purchases_service  # noqa: E402
from subledger.purchases.schemas import TransactionIn  # noqa: E402

SCENARIOS = ["ceiling", "get_profile", "create_profile", "patch_profile", "set_transaction", "grant", "vc_transaction"]
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def parse_wrk(output: str) -> dict:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    latency = {}
    for percentile in ("50", "99"):
        value, unit = re.search(rf"\s{percentile}%\s+([\d.]+)(us|ms|s)", output).groups()
        latency[percentile] = float(value) * UNITS[unit]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "requests": int(re.search(r"(\d+) requests in", output).group(1)),
        "rps": rps,
        "p50_ms": latency["50"],
        "p99_ms": latency["99"],
        "non_2xx": int(errors.group(1)) if errors else 0,
    }


def wrk(base: str, scenario: str, args: list[str], duration: int, connections: int, delay_ms: float = 0) -> dict:
    key, seeded = args
    prefix = f"{scenario}-{uuid.uuid4().hex[:8]}"  # new names for every run: creates never collide
    command = [
        "wrk",
        "-t2",
        f"-c{connections}",
        f"-d{duration}s",
        "--latency",
        "-s",
        str(HERE / "wrk" / f"{scenario}.lua"),
        base,
        "--",
        key,
        prefix,
        seeded,
        str(delay_ms),
    ]
    output = subprocess.run(
        command, capture_output=True, text=True, check=True, env={**os.environ, "BENCH_WRK_DIR": str(HERE / "wrk")}
    ).stdout
    return parse_wrk(output)


def seed(env: dict, url: str | None, data_dir: Path, profiles: int) -> dict:
    run(env, "migrate")
    app = shop(env, "Bench")
    rt = Runtime.from_settings(Settings(database_url=url or "", data_dir=data_dir, serve_worker="off"))
    app_id = uuid.UUID(app["app_id"])
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for n in range(profiles):
        profiles_service.create_profile(rt, app_id, ProfileRef(customer_user_id=f"seed-{n}"), ProfileFields(), None)
        tx = TransactionIn.model_validate(
            {
                "purchase_type": "subscription",
                "store": "app_store",
                "store_product_id": "monthly",
                "store_transaction_id": f"seed-{n}",
                "store_original_transaction_id": f"seed-{n}",
                "price": {"country": "US", "currency": "USD", "value": 9.99},
                "purchased_at": start.isoformat(),
                "originally_purchased_at": start.isoformat(),
                "expires_at": (start + timedelta(days=30)).isoformat(),
                "renew_status": True,
            }
        )
        purchases_service.set_transaction(rt, app_id, ProfileRef(customer_user_id=f"seed-{n}"), tx)
    currencies_service.enable(rt, app_id, True)  # vc_transaction credits COINS
    currencies_service.add_currency(rt, app_id, "COINS", "Coins")
    # Each profile holds coins already, as in an app that uses them: statistics of empty currency
    # tables would leave PostgreSQL's kept plans scanning them whole (200 µs a foreign key check).
    welcome = CurrencyTransactionIn.model_validate({"items": [{"currency_code": "COINS", "amount": 10}]})
    for n in range(profiles):
        currencies_service.transact(rt, app_id, ProfileRef(customer_user_id=f"seed-{n}"), welcome)
    settle_statistics(rt.db)
    rt.db.dispose()
    return app


def serve(env: dict, workers: int, factory: str) -> tuple[subprocess.Popen, str]:
    """Start the server. Its standard error goes to a file: a pipe nobody reads fills up
    after a few tracebacks and then stalls the server."""
    port = free_port()
    errors = tempfile.TemporaryFile("w+")
    # As `subledger serve` serves, with the factory given and no access log.
    launch = (
        "import sys\n"
        "from subledger.core.protocol import serve\n"
        "serve(sys.argv[1], '127.0.0.1', int(sys.argv[2]), int(sys.argv[3]), 'warning', access_log=False)"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", launch, factory, str(port), str(workers)],
        env={**env, "PYTHONPATH": str(HERE)},
        stdout=subprocess.DEVNULL,
        stderr=errors,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            httpx.get(base + "/openapi.json", timeout=1)
            return process, base
        except httpx.TransportError:
            time.sleep(0.1)
    errors.seek(0)
    raise RuntimeError(errors.read())


def server_pids(process: subprocess.Popen) -> list[str]:
    """The server's worker processes (the children of uvicorn's supervisor, if any)."""
    children = [
        pid
        for pid in subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()
        if b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()  # multiprocessing's helper
    ]
    return children or [str(process.pid)]  # one worker: uvicorn serves in its own process


def rss_mb(process: subprocess.Popen) -> list[float]:
    """Resident memory of each server worker process."""
    sizes = []
    for pid in server_pids(process):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                sizes.append(int(line.split()[1]) / 1024)
    return sizes


def cpu_seconds(pids: list[str]) -> float:
    """User and system CPU time these processes have used (those that have ended count nothing)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def database_pids() -> list[str]:
    """PostgreSQL's processes on this machine (its backends do a query's work)."""
    return subprocess.run(["pgrep", "-x", "postgres"], capture_output=True, text=True).stdout.split()


def measured(process: subprocess.Popen, engine: str, *wrk_args) -> dict:
    """A wrk run (``wrk(*wrk_args)``), with the CPU the server (and PostgreSQL) spent per request during it.

    A 2-core machine shared with wrk and the database is noisy: requests per second
    move with whatever else runs, CPU per request much less."""
    server, database = server_pids(process), database_pids() if engine == "postgresql" else []
    before = cpu_seconds(server), cpu_seconds(database)
    result = wrk(*wrk_args)
    spent = cpu_seconds(server) - before[0], cpu_seconds(database) - before[1]
    requests = max(result["requests"], 1)
    result["server_cpu_us"] = 1e6 * spent[0] / requests
    if database:
        result["database_cpu_us"] = 1e6 * spent[1] / requests
    return result


def run_scenarios(env: dict, app: dict, options) -> dict:
    """Each scenario on a server of its own: full load, then paced at half its peak rate."""
    results = {}
    for scenario in ["ceiling", *options.scenarios]:
        factory = "ceiling:create_app" if scenario == "ceiling" else "subledger.app:create_app"
        process, base = serve(env, options.workers, factory)
        try:
            args = [app["secret_api_key"], str(options.profiles)]
            wrk(base, scenario, args, 2, options.connections)  # warm-up
            peak = measured(process, options.engine, base, scenario, args, options.duration, options.connections)
            paced_delay = options.connections * 1000 / (peak["rps"] / 2)
            half = wrk(base, scenario, args, options.duration, options.connections, paced_delay)
            peak.update(half_rate_rps=half["rps"], half_rate_p99_ms=half["p99_ms"], worker_rss_mb=rss_mb(process))
            results[scenario] = peak
        finally:
            process.terminate()
            process.wait(timeout=30)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--duration", type=int, default=10, help="seconds per run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="server processes")
    parser.add_argument("--profiles", type=int, default=2000, help="profiles seeded before the runs")
    parser.add_argument(
        "--scenarios", nargs="+", choices=SCENARIOS[1:], default=SCENARIOS[1:], help="which to run (and the ceiling)"
    )
    parser.add_argument("--pgbouncer", action="store_true", help="PostgreSQL through PgBouncer (transaction mode)")
    parser.add_argument(
        "--sqlite-group-commit-ms", type=float, help="the server's SUBLEDGER_SQLITE_GROUP_COMMIT_MS (else its default)"
    )
    options = parser.parse_args()
    if options.pgbouncer and options.engine != "postgresql":
        parser.error("--pgbouncer goes with --engine postgresql")
    if options.sqlite_group_commit_ms is not None and options.engine != "sqlite":
        parser.error("--sqlite-group-commit-ms goes with --engine sqlite")

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        with scratch_database(options.engine, options.postgres_url) as url:
            # The contract's 600 a minute per app would cap vc_transaction: what is measured is the server.
            env = {
                **operator_env(data_dir, url),
                "SUBLEDGER_SERVE_WORKER": "off",
                "SUBLEDGER_VIRTUAL_CURRENCY_RATE_PER_MINUTE": "1e9",
            }
            if options.sqlite_group_commit_ms is not None:
                env["SUBLEDGER_SQLITE_GROUP_COMMIT_MS"] = str(options.sqlite_group_commit_ms)
            app = seed(env, url, data_dir, options.profiles)
            pooler = transaction_pooler(url, server_connections=20) if options.pgbouncer else nullcontext(None)
            with pooler as pooled:
                if pooled:
                    env.update(SUBLEDGER_DATABASE_URL=pooled, SUBLEDGER_DATABASE_TRANSACTION_POOLING="1")
                results = run_scenarios(env, app, options)

    ceiling = results["ceiling"]["rps"]
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    meta = {
        "engine": options.engine + (" via pgbouncer" if options.pgbouncer else ""),
        "workers": options.workers,
        "connections": options.connections,
        "duration_s": options.duration,
        "seeded_profiles": options.profiles,
        "sqlite_group_commit_ms": options.sqlite_group_commit_ms,
        "cpus": os.cpu_count(),
    }
    (out / f"http-{options.engine}{'-pgbouncer' if options.pgbouncer else ''}.json").write_text(
        json.dumps({"meta": meta, "results": results}, indent=2)
    )
    print(
        f"| scenario ({meta['engine']}) | req/s | % of ceiling | p50 ms | p99 ms | p99 ms at half rate "
        "| server CPU µs per request | database CPU µs per request | non-2xx |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for scenario, r in results.items():
        database_cpu = f"{r['database_cpu_us']:.0f}" if "database_cpu_us" in r else "-"
        print(
            f"| {scenario} | {r['rps']:.0f} | {100 * r['rps'] / ceiling:.0f}% | {r['p50_ms']:.2f} | "
            f"{r['p99_ms']:.2f} | {r['half_rate_p99_ms']:.2f} | {r['server_cpu_us']:.0f} | {database_cpu} | "
            f"{r['non_2xx']} |"
        )
    print(f"worker RSS (MB): {results[options.scenarios[0]]['worker_rss_mb']}")


if __name__ == "__main__":
    main()
