"""CPU and wall time of one counter redemption in-process (no HTTP server, no wrk): what the
request stack itself costs, beside the raw transaction's ~0.3 ms.

    .venv/bin/python scripts/profile_redemption.py [-n 500] [--profile]
    .venv/bin/python scripts/profile_redemption.py --database-url postgresql://postgres@127.0.0.1/test

Signs a clerk in through the test client, redeems two goods for random households' cards, and
prints wall and process CPU per redemption; --profile adds cProfile's top functions.
"""

import argparse
import cProfile
import os
import pstats
import random
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import bench_counter  # noqa: E402
from scratch import ScratchDatabase  # noqa: E402

from app import create_app  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("-n", type=int, default=500)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--sort", default="cumulative", help="cProfile order: cumulative or tottime"
    )
    parser.add_argument(
        "--everything", action="store_true", help="profile every module, not only app/"
    )
    args = parser.parse_args()
    scratch = ScratchDatabase(args.database_url, "profile-redemption")
    url = scratch.url
    try:
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": bench_counter.SECRET})
        village = bench_counter.setup(app, 1, 500)[0]
        client = app.test_client()
        page = client.get("/login").text
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        client.post(
            "/login",
            data={
                "username": village["clerk"],
                "password": bench_counter.PASSWORD,
                "csrf_token": token,
            },
        )
        csrf = re.search(
            r'<meta name="csrf-token" content="([^"]+)"', client.get("/counter").text
        ).group(1)

        def redeem(i: int) -> None:
            body = {
                "code": random.choice(village["cards"]),
                "request_id": f"p{i}-{random.random()}",
                "lines": [
                    {"item_id": village["items"][0], "qty": 1},
                    {"item_id": village["items"][1], "qty": 2},
                ],
            }
            resp = client.post(
                "/api/v1/counter/redemptions", json=body, headers={"X-CSRFToken": csrf}
            )
            assert resp.status_code == 201, resp.text

        for i in range(50):  # warm up
            redeem(i)
        profiler = cProfile.Profile() if args.profile else None
        database = bench_counter.cpu_seconds(comm="postgres") if scratch.schema else 0.0
        wall, cpu = time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        for i in range(args.n):
            redeem(1000 + i)
        if profiler:
            profiler.disable()
        wall = (time.perf_counter() - wall) / args.n * 1000
        cpu = (time.process_time() - cpu) / args.n * 1000
        if scratch.schema:
            database = (bench_counter.cpu_seconds(comm="postgres") - database) / args.n * 1000
        print(
            f"{scratch.kind}: {wall:.2f} ms wall, {cpu:.2f} ms CPU per redemption"
            + (f" (+ {database:.2f} ms PostgreSQL's)" if scratch.schema else "")
            + f" over {args.n}; load {os.getloadavg()[0]:.2f}"
        )
        if profiler:
            stats = pstats.Stats(profiler).sort_stats(args.sort)
            if args.everything:
                stats.print_stats(45)
            else:
                stats.print_stats(str(ROOT / "app"), 30)
    finally:
        scratch.close()


if __name__ == "__main__":
    main()
