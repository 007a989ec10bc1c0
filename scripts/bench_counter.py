"""Time from scan to receipt at the counter, measured against a real gunicorn.

For each of N redemptions a fresh pay code is "scanned" (POST /api/v1/counter/lookup) and then
redeemed (POST /api/v1/counter/redemptions: two items, one transaction with the village lock),
one after the other, as one clerk does. Prints p50 and p95 of lookup, redemption and the two
together (scan to receipt), measured at the client over localhost.

    .venv/bin/python scripts/bench_counter.py                       # SQLite (a temp file)
    .venv/bin/python scripts/bench_counter.py --database-url postgresql://postgres@127.0.0.1/test

On PostgreSQL it works in a schema of its own, dropped at the end. Not a test: figures depend on
the machine.
"""

import argparse
import os
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app import create_app  # noqa: E402
from app.config import normalize_database_url  # noqa: E402
from app.extensions import db  # noqa: E402

SECRET = "bench-secret-" + secrets.token_hex(8)
PASSWORD = "bench-pass-1"
WARMUP = 5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def setup(app, n: int) -> tuple[list[int], list[int]]:
    """A village with a supermarket, a clerk and n households of one resident each."""
    from app.auth.services import create_user
    from app.households.models import Resident
    from app.households.services import HouseholdData, create_household
    from app.store import services
    from app.villages.services import create_village

    with app.app_context():
        db.create_all()
        village = create_village("bench", "测试村", "bench-admin", PASSWORD, None)
        shop = services.save_venue(
            village.id, None, kind="supermarket", name="爱心超市", actor_id=None
        )
        items = [
            services.save_item(
                village.id,
                shop.id,
                None,
                services.ItemData(name=name, points=pts, stock=100_000),
                None,
            ).id
            for name, pts in (("大米", 30), ("香皂", 3))
        ]
        clerk = create_user(
            village_id=village.id, role="clerk", username="bench-clerk", password=PASSWORD
        )
        services.assign_clerk(village.id, clerk.id, shop.id, None)
        residents = []
        for i in range(n):
            h = create_household(
                village.id,
                HouseholdData(number=f"{i:04d}", head_name=f"户主{i}", opening_balance=500),
                None,
            )
            residents.append(
                db.session.scalar(db.select(Resident.id).where(Resident.household_id == h.id))
            )
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return residents, items


def sign_in(base: str) -> tuple[requests.Session, str]:
    s = requests.Session()
    page = s.get(base + "/login").text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    r = s.post(
        base + "/login",
        data={"username": "bench-clerk", "password": PASSWORD, "csrf_token": token},
        allow_redirects=False,
    )
    assert r.status_code == 302, r.text
    csrf = re.search(
        r'<meta name="csrf-token" content="([^"]+)"', s.get(base + "/counter").text
    ).group(1)
    return s, csrf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temp dir")
    parser.add_argument("-n", type=int, default=200, help="redemptions (default 200)")
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-counter-"))
    schema = None
    if args.database_url:
        base_url = normalize_database_url(args.database_url)
        schema = f"bench_{os.getpid()}"
        admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = f"{base_url}{'&' if '?' in base_url else '?'}options=-csearch_path%3D{schema}"
    else:
        url = f"sqlite:///{tmp / 'bench.db'}"
    os.environ["INSTANCE_PATH"] = str(tmp / "instance")
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": SECRET})
    print(f"database: {'PostgreSQL' if schema else 'SQLite'}; setting up {args.n} households ...")
    residents, items = setup(app, args.n + WARMUP)

    port = free_port()
    env = dict(os.environ, DATABASE_URL=url, SECRET_KEY=SECRET, INSTANCE_PATH=str(tmp / "live"))
    log = open(tmp / "gunicorn.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-w",
            str(args.workers),
            "-b",
            f"127.0.0.1:{port}",
            "wsgi:app",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if requests.get(base + "/login", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        session, csrf = sign_in(base)
        headers = {"X-CSRFToken": csrf}
        from app.households.models import Resident
        from app.store import codes, services

        lookups, redeems, totals = [], [], []
        with app.app_context():
            for i, resident_id in enumerate(residents):
                village_id = db.session.get(Resident, resident_id).village_id
                number = services.issue_pay_code(village_id, resident_id).number
                code = f"{base}/q/{codes.pay_token(number)}"
                t0 = time.perf_counter()
                r = session.post(
                    base + "/api/v1/counter/lookup", json={"code": code}, headers=headers
                )
                t1 = time.perf_counter()
                assert r.status_code == 200, r.text
                body = {
                    "code": code,
                    "lines": [{"item_id": items[0], "qty": 1}, {"item_id": items[1], "qty": 2}],
                    "request_id": uuid.uuid4().hex,
                }
                r = session.post(base + "/api/v1/counter/redemptions", json=body, headers=headers)
                t2 = time.perf_counter()
                assert r.status_code == 201, r.text
                assert r.json()["balance_after"] == 500 - 36
                if i >= WARMUP:  # the first few warm up the workers
                    lookups.append((t1 - t0) * 1000)
                    redeems.append((t2 - t1) * 1000)
                    totals.append((t2 - t0) * 1000)
        print(f"{len(totals)} redemptions (after {WARMUP} warm-up), gunicorn -w {args.workers}:")
        for name, values in (
            ("lookup (scan)", lookups),
            ("redemption", redeems),
            ("scan to receipt", totals),
        ):
            p50, p95 = percentile(values, 50), percentile(values, 95)
            print(
                f"  {name:16s} p50 {p50:6.1f} ms   p95 {p95:6.1f} ms"
                f"   mean {statistics.mean(values):6.1f} ms   max {max(values):6.1f} ms"
            )
        with app.app_context():
            from app.ledger.chain import verify

            problems = verify()
            print("ledger verify:", "ok" if not problems else problems[:3])
            db.engine.dispose()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
        if schema:
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


if __name__ == "__main__":
    main()
