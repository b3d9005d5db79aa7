"""New exchange rates on a big database while the server goes on writing.

    python bench/seed.py --database-url sqlite:////tmp/big.db --profiles 100000   # once
    python bench/repricing.py --database-url sqlite:////tmp/big.db --profiles 100000

Serves the database as `subledger serve` does (2 worker processes) and keeps set-transaction
requests coming with wrk (4 connections, each waiting 50 ms on average between requests)
while `subledger rates load` moves a currency to a new rate: the euro by default, in which one
seeded profile in ten pays (those are recomputed, the others only walked past); `--currency GBP`
moves one nobody pays in.
Reports how long the load took and, for each 10 s of wrk meanwhile, requests per second and
p50/p99 latency, against 10 s of the same before it. Results go to
bench/results/repricing-<engine>.json.
"""

import argparse
import json
import random
import subprocess
import tempfile
import time
from datetime import date
from pathlib import Path

from run import HERE, serve, wrk
from seed import seeded_app_key
from support.serving import SUBLEDGER, operator_env

from subledger.config import Settings
from subledger.core.runtime import Runtime

WINDOW_S = 10
CONNECTIONS = 4
DELAY_MS = 50


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True, help="a database seeded by bench/seed.py")
    parser.add_argument("--profiles", type=int, required=True, help="how many profiles it was seeded with")
    parser.add_argument("--currency", default="EUR", help="the currency whose rate moves")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        rt = Runtime.from_settings(Settings(database_url=options.database_url, data_dir=data_dir))
        key = seeded_app_key(rt)
        engine = "sqlite" if rt.db.is_sqlite else "postgresql"
        rt.db.dispose()

        rates = data_dir / "rates.csv"
        rate = f"{options.currency},{random.uniform(1.0, 1.2):.6f},{date.today()}"
        rates.write_text(f"currency,usd_per_unit,as_of\n{rate}\n")
        env = operator_env(data_dir, options.database_url)
        process, base = serve({**env, "SUBLEDGER_SERVE_WORKER": "off"}, 2, "subledger.app:create_app")
        traffic = [key, str(options.profiles)]
        loading = None
        try:
            before = wrk(base, "set_transaction", traffic, WINDOW_S, CONNECTIONS, DELAY_MS)
            print(f"before: {before}", flush=True)
            started = time.monotonic()
            # Its progress goes to a file: a pipe nobody reads until the end fills up and stops it.
            log = data_dir / "load.log"
            with log.open("wb") as out:
                loading = subprocess.Popen([*SUBLEDGER, "rates", "load", str(rates)], env=env, stderr=out)
            during = []
            while loading.poll() is None:
                during.append(wrk(base, "set_transaction", traffic, WINDOW_S, CONNECTIONS, DELAY_MS))
                print(f"{WINDOW_S * len(during)} s: {during[-1]}", flush=True)
            seconds = time.monotonic() - started  # to the end of the last window
            if loading.returncode != 0:
                raise RuntimeError(log.read_text())
        finally:
            if loading is not None and loading.poll() is None:
                loading.terminate()  # interrupted: the next `subledger migrate` finishes its work
            process.terminate()
            process.wait(timeout=30)

    results = {
        "profiles": options.profiles,
        "currency": options.currency,
        "load_s_at_most": round(seconds, 1),
        "before": before,
        "during": during,
    }
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / f"repricing-{engine}.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    print(f"repriced {options.profiles} profiles in at most {seconds:.0f} s while serving")
    for name, window in [("before", before)] + [(f"during {n + 1}", w) for n, w in enumerate(during)]:
        latency = f"p50 {window['p50_ms']:.1f} ms, p99 {window['p99_ms']:.1f} ms"
        errors = f", {window['non_2xx']} errors" if window["non_2xx"] else ""
        print(f"{name}: {window['rps']:.0f} req/s, {latency}{errors}")


if __name__ == "__main__":
    main()
