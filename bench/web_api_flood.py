"""Does a flood of Web API calls slow the server-side API? wrk on loopback against `subledger serve`.

    python bench/web_api_flood.py --engine sqlite        # or postgresql (needs the server on 127.0.0.1:5432)

The Web API's key is public, so anybody can flood it. This paces GET profile
(the server-side API's commonest call) at half of its peak rate and measures
its p99 three times: alone; while another wrk floods the Web API's paywall call
with the public key as fast as it can (past the first burst, nearly all refused
with 429 by the per-key and per-address limits); and, as the control, while a
flood as fast as it can hits a route that does not exist (404, the least a
request can cost the server). On a 2-core machine the flooding wrk competes
for the cores too, so the question is whether the Web API flood costs the
server-side API more than the control flood does. Results go to
bench/results/web-api-flood-<engine>.json and print as a table.
"""

import argparse
import json
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from run import HERE, cpu_seconds, seed, serve, server_pids, wrk
from scratch import scratch_database
from support.serving import operator_env, run, run_json

FLOODS = {"alone": None, "Web API flood": "web_api_paywall", "control flood (404)": "not_found"}


def placement(env: dict, app_id: str) -> None:
    """The placement the flood asks for: a paywall of the seeded product."""
    products = run_json(env, "products", "list", "--app", app_id)
    paywall = run_json(
        env, "paywalls", "create", "--app", app_id, "--title", "Main", "--product", products[0]["product_id"]
    )
    target = json.dumps({"paywall_id": paywall["paywall_id"]})
    run(env, "placements", "set", "--app", app_id, "--id", "onboarding", "--target", target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--duration", type=int, default=10, help="seconds per run")
    parser.add_argument("--connections", type=int, default=32, help="of the paced GET and of the flood each")
    parser.add_argument("--workers", type=int, default=2, help="server processes")
    parser.add_argument("--profiles", type=int, default=2000, help="profiles seeded before the runs")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        with scratch_database(options.engine, options.postgres_url) as url:
            env = {**operator_env(data_dir, url), "SUBLEDGER_SERVE_WORKER": "off"}
            app = seed(env, url, data_dir, options.profiles)
            placement(env, app["app_id"])
            process, base = serve(env, options.workers, "subledger.app:create_app")
            try:
                secret = [app["secret_api_key"], str(options.profiles)]
                public = [app["public_api_key"], str(options.profiles)]
                wrk(base, "get_profile", secret, 2, options.connections)  # warm-up
                peak = wrk(base, "get_profile", secret, options.duration, options.connections)
                paced_delay = options.connections * 1000 / (peak["rps"] / 2)
                results = {}
                for name, flood in FLOODS.items():
                    before = cpu_seconds(server_pids(process))
                    with ThreadPoolExecutor(1) as pool:
                        args = (base, flood, public, options.duration, options.connections)
                        flooding = flood and pool.submit(wrk, *args)
                        paced = wrk(base, "get_profile", secret, options.duration, options.connections, paced_delay)
                        flooded = flooding.result() if flooding else None
                    spent = cpu_seconds(server_pids(process)) - before
                    results[name] = {"get_profile": paced, "flood": flooded, "server_cpu_s": spent}
            finally:
                process.terminate()
                process.wait(timeout=30)

    out = HERE / "results"
    out.mkdir(exist_ok=True)
    meta = {
        "engine": options.engine,
        "workers": options.workers,
        "connections": options.connections,
        "duration_s": options.duration,
        "get_profile_peak_rps": peak["rps"],
        "cpus": os.cpu_count(),
    }
    (out / f"web-api-flood-{options.engine}.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    print(f"GET profile peak ({options.engine}): {peak['rps']:.0f} req/s, paced at half of it")
    print("| during | GET profile req/s | GET p50 / p99 ms | flood req/s | flood refused | server CPU s |")
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        get, flood = r["get_profile"], r["flood"]
        refused = flood and 100 * flood["non_2xx"] / max(flood["requests"], 1)
        flood_cells = f"{flood['rps']:.0f} | {refused:.0f}%" if flood else "– | –"
        print(
            f"| {name} | {get['rps']:.0f} | {get['p50_ms']:.1f} / {get['p99_ms']:.1f} | {flood_cells} "
            f"| {r['server_cpu_s']:.1f} |"
        )


if __name__ == "__main__":
    main()
