"""`flask ledger verify` now against the verify of commit fd42314 (before issue 8), in one run.

    .venv/bin/python scripts/bench_verify.py --entries 1000000
    .venv/bin/python scripts/bench_verify.py --entries 1000000 --database-url postgresql://...

Seeds a village (`flask bench seed`), then times: the old full verify (its source taken from git),
the new full verify, and the new default run after 1,000 more entries (only what is new since the
last clean run). Beside them the raw database's time to read the same rows (a SELECT streaming
every entry's columns), so the figures compare on a busy machine.
"""

import argparse
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scratch import ScratchDatabase  # noqa: E402
from sqlalchemy import text  # noqa: E402

from app import create_app  # noqa: E402
from app.extensions import db  # noqa: E402

OLD = "fd42314"


def old_verify_module(tmp: Path):
    source = subprocess.run(
        ["git", "show", f"{OLD}:app/ledger/chain.py"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    # The old module imports siblings relatively: load it as app.ledger.old_chain.
    path = ROOT / "app" / "ledger" / "_old_chain_bench.py"
    path.write_text(source)
    try:
        spec = importlib.util.spec_from_file_location("app.ledger._old_chain_bench", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        path.unlink()
    return module


def timed(fn) -> tuple[float, object]:
    t = time.perf_counter()
    result = fn()
    return time.perf_counter() - t, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--households", type=int, default=10_000)
    args = parser.parse_args()

    scratch = ScratchDatabase(args.database_url, "bench-verify")
    tmp, url = scratch.tmp, scratch.url
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench"})
    try:
        with app.app_context():
            from app.benchdata import seed
            from app.ledger import services as ledger
            from app.ledger.chain import verify

            db.create_all()
            t, vid = timed(lambda: seed("benchv", args.households, args.entries, "bench-pass-1"))
            print(f"seeded {args.entries} entries in {t:.0f} s; load {os.getloadavg()[0]:.2f}")
            raw, _ = timed(
                lambda: db.session.execute(
                    text(
                        "SELECT id, village_id, seq, household_id, kind, points, balance_after, "
                        "reason, ref, key, reverses_id, created_by_id, created_at, prev_hash, "
                        "hash FROM ledger_entry WHERE village_id = :v ORDER BY seq"
                    ),
                    {"v": vid},
                ).all()
            )
            db.session.rollback()
            old = old_verify_module(tmp)
            t_old, problems_old = timed(lambda: old.verify("benchv"))
            db.session.rollback()
            t_full, problems = timed(lambda: verify("benchv", full=True))
            for k in range(1000):
                ledger.award(vid, k % 100 + 1, 5, "清洁日", None)
            t_new, problems_new = timed(lambda: verify("benchv"))
            per_m = 1_000_000 / args.entries
            print(
                f"{scratch.kind}, {args.entries} entries; "
                f"load {os.getloadavg()[0]:.2f}\n"
                f"  raw read of the rows:            {raw:7.2f} s "
                f"({raw * per_m:.1f} s per million)\n"
                f"  old full verify ({OLD}):       {t_old:7.2f} s "
                f"({t_old * per_m:.1f} s per million)"
                f" {'ok' if not problems_old else problems_old[0]}\n"
                f"  new full verify:                 {t_full:7.2f} s "
                f"({t_full * per_m:.1f} s per million) {'ok' if not problems else problems[0]}; "
                f"{t_old / t_full:.1f}x faster than old, {t_full / raw:.1f}x the raw read\n"
                f"  new default run, 1,000 new:      {t_new:7.2f} s "
                f"{'ok' if not problems_new else problems_new[0]}"
            )
            db.session.remove()
            db.engine.dispose()
    finally:
        scratch.close()


if __name__ == "__main__":
    main()
