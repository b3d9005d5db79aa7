"""Does a flood of sign-ins slow the API? `subledger serve` on loopback, a flood of failing sign-ins.

    python bench/sign_in_flood.py --engine sqlite        # or postgresql (needs the server on 127.0.0.1:5432)

Measures the latency of API writes (PATCH profile, one after another) with the server idle,
then while, every second, 100 sign-ins with wrong passwords arrive at once, each from an address
of its own (127.0.1.x: the per-address limit does not stop them) for an email of its own
(argon2 checks a password at 64 MiB and tens of milliseconds: without the dashboard's cap on
checks at once, 60 such sign-ins held the server's threads, 1.9 GB, and a write for 8 s).
Prints p50/p99 of both and what became of the sign-ins; results go to
bench/results/sign-in-flood-<engine>.json.
"""

import argparse
import json
import re
import statistics
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
from run import HERE, rss_mb, seed, serve
from scratch import scratch_database
from support.serving import operator_env, run

FLOODERS = 100


def writes(base: str, key: str, seconds: float) -> list[float]:
    """Milliseconds of each PATCH profile made one after another for ``seconds``."""
    timings = []
    headers = {"Authorization": f"Api-Key {key}", "adapty-customer-user-id": "seed-0"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        deadline = time.monotonic() + seconds
        n = 0
        while time.monotonic() < deadline:
            n += 1
            started = time.perf_counter()
            response = client.patch("/api/v2/server-side-api/profile/", json={"first_name": f"n{n}"})
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.text
    return timings


def flood(
    base: str, number: int, target: str, waves: threading.Barrier, stop: threading.Event, outcomes: Counter
) -> None:
    """One failing sign-in a wave (posted to ``target``), from 127.0.1.<number>, with the other
    clients, until ``stop``."""
    transport = httpx.HTTPTransport(local_address=f"127.0.1.{number + 1}")
    with httpx.Client(base_url=base, timeout=30, transport=transport) as client:
        wave = 0
        while not stop.is_set():
            wave += 1
            page = client.get("/dashboard/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
            try:
                waves.wait(timeout=10)  # all at once
            except threading.BrokenBarrierError:
                return
            answer = client.post(
                target,
                data={"email": f"intruder{number}-{wave}@example.com", "password": "not the password", "csrf": csrf},
                follow_redirects=False,
            )
            outcomes[answer.status_code] += 1
            time.sleep(1.0 - time.monotonic() % 1.0)  # the next wave on the next second


def percentile(values: list[float], share: float) -> float:
    return statistics.quantiles(values, n=100)[int(share) - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--duration", type=float, default=10, help="seconds per run")
    parser.add_argument("--workers", type=int, default=2, help="server processes")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        with scratch_database(options.engine, options.postgres_url) as url:
            env = {**operator_env(data_dir, url), "SUBLEDGER_SERVE_WORKER": "off"}
            app = seed(env, url, data_dir, 10)
            run(env, "operators", "create", "--email", "ops@example.com", "--password", "x" * 20)
            process, base = serve(env, options.workers, "subledger.app:create_app")
            try:
                idle = writes(base, app["secret_api_key"], options.duration)
                flooded, memory, outcomes = {}, None, {}
                for name, target in (("sign-ins", "/dashboard/login"), ("control (404)", "/dashboard/nothing")):
                    stop, outcomes[name], waves = threading.Event(), Counter(), threading.Barrier(FLOODERS)
                    flooders = [
                        threading.Thread(target=flood, args=(base, n, target, waves, stop, outcomes[name]))
                        for n in range(FLOODERS)
                    ]
                    for thread in flooders:
                        thread.start()
                    time.sleep(1)  # the flood under way
                    flooded[name] = writes(base, app["secret_api_key"], options.duration)
                    memory = memory or rss_mb(process)
                    stop.set()
                    waves.abort()
                    for thread in flooders:
                        thread.join()
            finally:
                process.terminate()
                process.wait(timeout=30)

    def figures(timings: list[float]) -> dict:
        return {"writes": len(timings), "p50_ms": percentile(timings, 50), "p99_ms": percentile(timings, 99)}

    results = {
        "idle": figures(idle),
        **{name: figures(timings) for name, timings in flooded.items()},
        "answers": {name: {str(k): v for k, v in sorted(found.items())} for name, found in outcomes.items()},
        "worker_rss_mb_during_sign_ins": memory,
    }
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / f"sign-in-flood-{options.engine}.json").write_text(json.dumps(results, indent=2))
    print(f"| PATCH profile ({options.engine}), during | writes | p50 ms | p99 ms |")
    print("|---|---|---|---|")
    for name in ("idle", *flooded):
        r = results[name]
        print(f"| {name} | {r['writes']} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} |")
    print(f"answers by status: {results['answers']}; worker RSS (MB) during the sign-ins: {memory}")


if __name__ == "__main__":
    main()
