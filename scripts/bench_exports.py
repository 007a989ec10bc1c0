"""Export time and peak memory with a big village, in one run.

    .venv/bin/python scripts/bench_exports.py                       # SQLite, 100,000 households
    .venv/bin/python scripts/bench_exports.py --database-url postgresql://postgres@127.0.0.1/test
    .venv/bin/python scripts/bench_exports.py --households 100000 --entries 1000000

The village is made by `flask bench seed` (households with a head each and chained ledger
entries, bulk). Each export then runs in a fresh process (so its peak RSS is its own), through the
same functions the route streams: the rows are read in batches and written as CSV chunks or into
an .xlsx (openpyxl write_only) in a temporary file, then read back in chunks as the response
would. Prints seconds, bytes, the process's RSS before the export and its peak during it.
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
from sqlalchemy import select  # noqa: E402

from app import create_app  # noqa: E402
from app.extensions import db  # noqa: E402

CODE = "bench-export"


def status_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process. Not getrusage's ru_maxrss: Linux carries
    that over from the parent across fork and exec, so it would report the seeding's peak."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def run_one(url: str, what: str, fmt: str) -> None:
    from app.database import utcnow
    from app.reports import exports
    from app.villages.models import Village

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench"})
    with app.app_context(), app.test_request_context():
        vid = db.session.scalar(select(Village.id).where(Village.code == CODE))
        db.session.execute(select(1))
        base = status_mb("VmRSS")
        started = time.perf_counter()
        size = 0
        if what == "report":
            from app.reports import reports

            year = utcnow().year
            report = reports.build(vid, reports.Period.for_year(year))
            if fmt == "xlsx":
                for chunk in exports.file_chunks(reports.xlsx(report)):
                    size += len(chunk)
        else:
            table = (
                exports.households(vid, utcnow())
                if what == "households"
                else exports.EXPORTS[what](vid, None, None)
            )
            chunks = (
                exports.csv_chunks(table)
                if fmt == "csv"
                else exports.file_chunks(exports.xlsx_file(table))
            )
            for chunk in chunks:
                size += len(chunk)
        seconds = time.perf_counter() - started
        peak = status_mb("VmHWM")
        print(f"{what}.{fmt}\t{seconds:.2f}\t{size / 1e6:.1f}\t{base:.0f}\t{peak:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url")
    parser.add_argument("--households", type=int, default=100_000)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--one", nargs=3, metavar=("URL", "WHAT", "FMT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        run_one(*args.one)
        return

    scratch = ScratchDatabase(args.database_url, "bench-exports")
    url = scratch.url
    try:
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench"})
        with app.app_context():
            from app.benchdata import seed
            from app.ledger.services import recompute_ranks

            db.create_all()
            started = time.perf_counter()
            vid = seed(CODE, args.households, args.entries, "bench-pass-1", opening=10)
            recompute_ranks(vid)
            print(
                f"{scratch.kind}: {args.households} households, "
                f"{args.entries} entries, seeded in {time.perf_counter() - started:.0f} s"
            )
            db.engine.dispose()
        print("export\tseconds\tMB out\tRSS before MB\tpeak RSS MB")
        for what, fmt in (
            ("households", "csv"),
            ("households", "xlsx"),
            ("ledger", "csv"),
            ("ledger", "xlsx"),
            ("report", "page"),
            ("report", "xlsx"),
        ):
            if what == "report" and importlib.util.find_spec("app.reports.reports") is None:
                continue
            subprocess.run(
                [sys.executable, __file__, "--one", url, what, fmt], check=True, env=os.environ
            )
        print(f"load {os.getloadavg()[0]:.2f}")
    finally:
        scratch.close()


if __name__ == "__main__":
    main()
