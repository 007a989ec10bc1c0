"""Page timings with 100 and with 100,000 households (server side, through the WSGI app).

    DATABASE_URL=sqlite:////tmp/bench.db .venv/bin/python scripts/bench_pages.py
    DATABASE_URL=postgresql://postgres@127.0.0.1/bench .venv/bin/python scripts/bench_pages.py

Households beyond the first hundred are bulk-inserted (benchmark data only); every ledger entry
goes through the ledger service. Prints median and p95 milliseconds per page for each size.
"""

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, select  # noqa: E402

from app import create_app  # noqa: E402
from app.auth.services import create_user  # noqa: E402
from app.extensions import db  # noqa: E402
from app.households.models import Household, new_public_id  # noqa: E402
from app.households.services import save_resident  # noqa: E402
from app.ledger import services as ledger  # noqa: E402
from app.villages.services import create_village  # noqa: E402

PASSWORD = "bench-pass-1"


def build(size: int) -> dict:
    code = f"bench{size}"
    village = create_village(code, f"测试村{size}", f"{code}-admin", PASSWORD, None)
    rows = [
        dict(
            village_id=village.id,
            public_id=new_public_id(),
            number=f"{i:06d}",
            head_name=f"户主{i}",
            group_name=f"{i % 12 + 1}组",
            address=f"{i}号",
        )
        for i in range(1, size + 1)
    ]
    for i in range(0, len(rows), 5000):
        db.session.execute(insert(Household), rows[i : i + 5000])
    db.session.commit()
    ids = db.session.scalars(
        select(Household.id)
        .where(Household.village_id == village.id)
        .order_by(Household.id)
        .limit(50)
    ).all()
    for n, hid in enumerate(ids):
        for k in range(40):  # 2,000 entries through the service
            ledger.award(village.id, hid, 5 + k % 7, "清洁日", None)
        if n == 0:
            resident = save_resident(
                village.id,
                hid,
                name="村民",
                phone=f"139{size:08d}",
                birth_year=1960,
                actor_id=None,
            )
            create_user(
                village_id=village.id,
                role="villager",
                username=resident.phone,
                password=PASSWORD,
                resident_id=resident.id,
            )
    return {"code": code, "admin": f"{code}-admin", "villager": resident.phone, "hid": ids[0]}


def timed(client, path: str, n: int = 30) -> tuple[float, float]:
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        resp = client.get(path)
        samples.append((time.perf_counter() - t) * 1000)
        assert resp.status_code == 200, (path, resp.status_code)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def main() -> None:
    app = create_app({"WTF_CSRF_ENABLED": False})
    with app.app_context():
        db.drop_all()
        db.create_all()
    for size in (100, 100_000):
        with app.app_context():
            t0 = time.perf_counter()
            info = build(size)
        print(f"-- {size} households (built in {time.perf_counter() - t0:.0f}s)")
        admin, villager = app.test_client(), app.test_client()
        admin.post("/login", data={"username": info["admin"], "password": PASSWORD})
        villager.post("/login", data={"username": info["villager"], "password": PASSWORD})
        for label, client, path in [
            ("households list p1", admin, "/admin/households/"),
            ("households list last page", admin, f"/admin/households/?after={size - 10:06d}"),
            ("households search name", admin, "/admin/households/?q=户主99"),
            ("households search number", admin, f"/admin/households/?q={size // 2:06d}"),
            ("household detail", admin, f"/admin/households/{info['hid']}"),
            ("villager /me", villager, "/me"),
        ]:
            p50, p95 = timed(client, path)
            print(f"{label:28s} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms")
    print("database:", os.environ.get("DATABASE_URL", "sqlite (instance)"))


if __name__ == "__main__":
    main()
