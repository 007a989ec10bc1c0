"""Each SQL statement of the counter lookup and the public notice board, timed in a small and a
large village of one database, in one run: a statement that grows with the village shows here
even when the machine is too loaded for page timings to compare.

    .venv/bin/python scripts/bench_statements.py [--small 1000] [--large 100000] [-n 60]
    .venv/bin/python scripts/bench_statements.py --database-url postgresql://postgres@127.0.0.1/test
"""

import argparse
import collections
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import bench_pages  # noqa: E402
from scratch import ScratchDatabase  # noqa: E402
from sqlalchemy import event  # noqa: E402

from app import create_app  # noqa: E402
from app.extensions import db  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=100000)
    parser.add_argument("-n", type=int, default=60)
    args = parser.parse_args()
    scratch = ScratchDatabase(args.database_url, "bench-statements")
    url = scratch.url
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "WTF_CSRF_ENABLED": False}
    )
    try:
        with app.app_context():
            db.create_all()
        small = bench_pages.build(app, "small", args.small, args.small)
        large = bench_pages.build(app, "large", args.large, args.large)
        times: dict[tuple, list[float]] = collections.defaultdict(list)
        state = {"who": None, "t": 0.0}
        with app.app_context():

            @event.listens_for(db.engine, "before_cursor_execute")
            def before(conn, cursor, statement, params, context, many):
                state["t"] = time.perf_counter()

            @event.listens_for(db.engine, "after_cursor_execute")
            def after(conn, cursor, statement, params, context, many):
                if state["who"]:
                    key = (state["who"], " ".join(statement.split())[:90])
                    times[key].append((time.perf_counter() - state["t"]) * 1000)

        pages = {}
        for info in (small, large, small, large):  # twice each, interleaved
            client = app.test_client()
            client.post(
                "/login",
                data={"username": f"{info['code']}-clerk", "password": bench_pages.PASSWORD},
            )
            for name, call in (
                (
                    "counter lookup",
                    lambda c=client, i=info: c.post(
                        "/api/v1/counter/lookup", json={"code": i["card"]}
                    ),
                ),
                ("notice board", lambda c=client, i=info: c.get(f"/v/{i['code']}/notices")),
            ):
                state["who"] = (name, info["code"])
                for _ in range(args.n):
                    t = time.perf_counter()
                    resp = call()
                    pages.setdefault((name, info["code"]), []).append(
                        (time.perf_counter() - t) * 1000
                    )
                    assert resp.status_code == 200, resp.get_data(as_text=True)[:200]
                state["who"] = None
        print(f"load {os.getloadavg()[0]:.2f}; {args.small} vs {args.large} households")
        for name in ("counter lookup", "notice board"):
            s = statistics.median(pages[(name, "small")])
            lg = statistics.median(pages[(name, "large")])
            print(f"{name}: p50 {s:.2f} ms small, {lg:.2f} ms large, x{lg / s:.2f}")
            statements = sorted({k[1] for k in times if k[0][0] == name})
            for st in statements:
                a = statistics.median(times.get(((name, "small"), st), [0]))
                b = statistics.median(times.get(((name, "large"), st), [0]))
                print(f"  {a:6.3f} ms  {b:6.3f} ms  {st}")
    finally:
        scratch.close()


if __name__ == "__main__":
    main()
