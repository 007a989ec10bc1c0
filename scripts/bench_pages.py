"""Page times with a small and a large village, in one run: the ratio is what compares.

    .venv/bin/python scripts/bench_pages.py                                   # SQLite
    .venv/bin/python scripts/bench_pages.py --database-url postgresql://postgres@127.0.0.1/test
    .venv/bin/python scripts/bench_pages.py --small 1000:100000 --large 100000:10000000

Each village is made by `flask bench seed` (households and chained ledger entries, bulk), then
every page is requested through the app in-process (server time only), N times each, for a
household in the middle of the village, the two villages' requests alternating (so the shared
machine's noise falls on both alike). Prints p50 and p95 for both sizes and large/small.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scratch import ScratchDatabase  # noqa: E402
from sqlalchemy import select  # noqa: E402

from app import create_app  # noqa: E402
from app.extensions import db  # noqa: E402

PASSWORD = "bench-pass-1"


def build(app, code: str, households: int, entries: int) -> dict:
    from app.auth.services import create_user
    from app.benchdata import seed
    from app.households.models import Household, Resident
    from app.store import codes, services

    with app.app_context():
        started = time.perf_counter()
        vid = seed(code, households, entries, PASSWORD)
        mid = db.session.scalars(
            select(Household)
            .where(Household.village_id == vid)
            .order_by(Household.number)
            .offset(households // 2)
            .limit(1)
        ).one()
        resident = db.session.scalar(select(Resident).where(Resident.household_id == mid.id))
        resident.phone = f"139{vid:08d}"
        db.session.commit()
        create_user(
            village_id=vid,
            role="villager",
            username=resident.phone,
            password=PASSWORD,
            resident_id=resident.id,
        )
        shop = services.save_venue(vid, None, kind="supermarket", name="爱心超市", actor_id=None)
        clerk = create_user(
            village_id=vid, role="clerk", username=f"{code}-clerk", password=PASSWORD
        )
        services.assign_clerk(vid, clerk.id, shop.id, None)
        info = {
            "code": code,
            "hid": mid.id,
            "number": mid.number,
            "head": mid.head_name,
            "group": mid.group_name,
            "villager": resident.phone,
            "card": codes.card_token(mid.public_id, mid.card_version),
            "seconds": time.perf_counter() - started,
        }
        db.session.remove()
    return info


def _p50_p95(samples: list[float]) -> tuple[float, float]:
    samples = sorted(samples)
    return statistics.median(samples), samples[max(0, int(len(samples) * 0.95) - 1)]


def _time(call) -> float:
    t = time.perf_counter()
    resp = call()
    elapsed = (time.perf_counter() - t) * 1000
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    return elapsed


def requests_of(app, info: dict) -> dict:
    """Every page as a call, signed in as who would open it."""
    admin, villager, clerk, anyone = (app.test_client() for _ in range(4))
    admin.post("/login", data={"username": f"{info['code']}-admin", "password": PASSWORD})
    villager.post("/login", data={"username": info["villager"], "password": PASSWORD})
    clerk.post("/login", data={"username": f"{info['code']}-clerk", "password": PASSWORD})
    prefix = info["head"][:3]
    cases = [
        ("household list, first page", admin, "/admin/households/"),
        ("household list, a later page", admin, f"/admin/households/?after={info['number']}"),
        ("search: a head's name", admin, f"/admin/households/?q={prefix}"),
        ("search: a name nobody has", admin, "/admin/households/?q=无此人"),
        ("search: a group", admin, f"/admin/households/?q={info['group']}"),
        ("search: a number", admin, f"/admin/households/?q={info['number']}"),
        ("household detail", admin, f"/admin/households/{info['hid']}"),
        ("scorer's household picker", admin, f"/scoring/proposals/new?q={prefix}"),
        ("villager /me", villager, "/me"),
        ("villager /me, an older page", villager, "/me?before=999999999"),
        ("public notice board", anyone, f"/v/{info['code']}/notices"),
    ]
    calls = {label: (lambda c=client, p=path: c.get(p)) for label, client, path in cases}
    calls["counter lookup (card)"] = lambda: clerk.post(
        "/api/v1/counter/lookup", json={"code": info["card"]}
    )
    return calls


def pages(app, small: dict, large: dict, n: int) -> dict[str, tuple]:
    """Each page n times in each village, the two villages' requests alternating, so that the
    machine's noise (it is shared) falls on both alike. Returns {page: (small, large)}, each
    (p50, p95)."""
    a, b = requests_of(app, small), requests_of(app, large)
    out = {}
    for label in a:
        for call in (a[label], b[label]):  # warm: the first request of a page pays its imports
            _time(call)
        got = ([], [])
        for _ in range(n):
            got[0].append(_time(a[label]))
            got[1].append(_time(b[label]))
        out[label] = (_p50_p95(got[0]), _p50_p95(got[1]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--small", default="1000:100000", help="households:entries")
    parser.add_argument("--large", default="100000:10000000", help="households:entries")
    parser.add_argument("-n", type=int, default=40, help="requests per page")
    args = parser.parse_args()

    scratch = ScratchDatabase(args.database_url, "bench-pages")
    url = scratch.url
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "WTF_CSRF_ENABLED": False}
    )
    try:
        with app.app_context():
            db.create_all()
        sizes = []
        for name, spec in (("small", args.small), ("large", args.large)):
            households, entries = (int(x) for x in spec.split(":"))
            info = build(app, f"bench-{name}", households, entries)
            print(
                f"{name}: {households} households, {entries} entries, "
                f"seeded in {info['seconds']:.0f} s; load {os.getloadavg()[0]:.2f}"
            )
            sizes.append((households, entries, info))
        results = pages(app, sizes[0][2], sizes[1][2], args.n)
        (sh, se, _), (lh, le, _) = sizes
        print(
            f"\n{scratch.kind}, p50 / p95 ms, {sh}/{se} vs {lh}/{le} "
            f"households/entries, {args.n} requests each, the two villages alternating; "
            f"load {os.getloadavg()[0]:.2f}"
        )
        head = ("page", "small p50", "p95", "large p50", "p95", "p95 x")
        print("{:32s} {:>9s} {:>7s} {:>9s} {:>7s} {:>6s}".format(*head))
        for label, ((a50, a95), (b50, b95)) in results.items():
            print(f"{label:32s} {a50:9.1f} {a95:7.1f} {b50:9.1f} {b95:7.1f} {b95 / a95:6.2f}")
    finally:
        scratch.close()


if __name__ == "__main__":
    main()
