"""Counter throughput against the raw database, in one run: the ratio is what compares.

    .venv/bin/python scripts/bench_counter.py                       # SQLite
    .venv/bin/python scripts/bench_counter.py --database-url postgresql://postgres@127.0.0.1/test
    .venv/bin/python scripts/bench_counter.py --database-url ... --villages 20 --workers 2,4

For each worker count: gunicorn serving the app, wrk (Debian's package) with `--connections`
clients posting redemptions as fast as they are answered (or, with `--think MS`, each waiting MS
milliseconds after an answer, as a clerk hands over the goods: the latency of a counter that is not
saturated), every request a different household's card and a new request id; then the counts are
checked (every 201 is one redemption, nothing else was recorded) and the ledger verified. Beside
it, in the same run, the raw rate of the same shape of transaction written directly against the
database (lock the village, conditional updates of balance and stock, insert the redemption, its
line and the ledger row, move the head): Python's sqlite3 with WAL and synchronous=FULL, or pgbench
with 8 clients on one village row. The ledger lock's hold time is read from the app's
LEDGER_LOCK_LOG; on SQLite the raw loop's own hold (BEGIN IMMEDIATE to the COMMIT's return, the
disk's fsync included) is printed beside it, the floor for the app's. The machine's load is
printed.
BENCH_GUNICORN adds options to gunicorn's command (e.g. "-k gthread --threads 4").
"""

import argparse
import json
import os
import re
import resource
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scratch import ScratchDatabase  # noqa: E402
from sqlalchemy import create_engine, select, text, update  # noqa: E402

from app import create_app  # noqa: E402
from app.extensions import db  # noqa: E402

SECRET = "bench-counter-secret"
PASSWORD = "bench-pass-1"
# The clerks' browser, at sign-in and at the counter alike: with another one Flask-Login marks
# the session not fresh on every request, and the cookie is signed and sent again each time.
AGENT = "bench-counter/1"


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))] if values else float("nan")


def cpu_seconds(pids=None, comm: str | None = None) -> float:
    """CPU (user + system, and that of reaped children) used so far by the processes `pids` or
    every process named `comm` (PostgreSQL's postmaster holds its finished backends' CPU)."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0
    for entry in os.listdir("/proc") if pids is None else [str(p) for p in pids]:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name, fields = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :]
        if comm is not None and name != comm:
            continue
        utime, stime, cutime, cstime = (int(x) for x in fields.split()[11:15])
        total += utime + stime + cutime + cstime
    return total / tick


def rusage_seconds(after, before) -> float:
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def cpu_line(count: int, app: float, database: float, client: float, client_name: str) -> str:
    """CPU per transaction, by whom: on a machine shared with others the throughput moves with
    their load, what each transaction costs much less."""
    parts = [f"app {app / count * 1000:.2f}"] if app else []
    parts += [f"database {database / count * 1000:.2f}"] if database else []
    parts += [f"{client_name} {client / count * 1000:.2f}"]
    total = (app + database + client) / count * 1000
    return f"CPU per transaction {total:.2f} ms (" + ", ".join(parts) + ")"


def children(pid: int) -> list[int]:
    found = [pid]
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            found += [int(c) for c in f.read().split()]
    return found


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f}/{five:.2f} on {os.cpu_count()} cores"


# ---------------------------------------------------------------- data


def setup(app, villages: int, households: int) -> list[dict]:
    """Villages with households (100,000 points each), a shop with three goods in deep stock and
    one clerk each; returns per village its id, clerk, items and card tokens."""
    from app.auth.services import create_user
    from app.benchdata import seed
    from app.households.models import Household
    from app.store import codes, services
    from app.store.models import Item
    from app.store.services import ItemData

    out = []
    with app.app_context():
        db.create_all()
        for n in range(villages):
            code = f"bench{n}"
            vid = seed(code, households, households, PASSWORD, opening=100_000)
            shop = services.save_venue(
                vid, None, kind="supermarket", name="爱心超市", actor_id=None
            )
            items = [
                services.save_item(vid, shop.id, None, ItemData(name=f"商品{i}", points=2), None).id
                for i in range(3)
            ]
            db.session.execute(update(Item).where(Item.id.in_(items)).values(stock=10**9))
            db.session.commit()
            clerk = create_user(
                village_id=vid, role="clerk", username=f"{code}-clerk", password=PASSWORD
            )
            services.assign_clerk(vid, clerk.id, shop.id, None)
            db.session.commit()
            cards = [
                codes.card_token(pid, 1)
                for pid in db.session.scalars(
                    select(Household.public_id).where(Household.village_id == vid)
                )
            ]
            out.append({"village_id": vid, "clerk": clerk.username, "items": items, "cards": cards})
        db.session.remove()
        db.engine.dispose()
    return out


# ---------------------------------------------------------------- the app under wrk

LUA = r"""
local villages = dofile("%(data)s")
local counter = 0
local thread_id = 0
local printed = false
function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
end
function init(args)
  math.randomseed(tid * 7919 + os.time())
end
function request()
  counter = counter + 1
  local v = villages[(counter %% #villages) + 1]
  local card = v.cards[math.random(#v.cards)]
  local body = '{"code":"' .. card .. '","request_id":"b' .. tid .. '-' .. counter .. '-' ..
    math.random(1000000000) .. '","lines":[{"item_id":' .. v.items[1] .. ',"qty":1},' ..
    '{"item_id":' .. v.items[2] .. ',"qty":2}]}'
  return wrk.format("POST", "/api/v1/counter/redemptions",
    {["Content-Type"] = "application/json", ["Cookie"] = v.cookie, ["X-CSRFToken"] = v.csrf,
     ["User-Agent"] = "%(agent)s"},
    body)
end
function delay()
  return %(think)d
end
function response(status, headers, body)
  if status ~= 201 and not printed then
    printed = true
    io.write("FIRST REFUSAL " .. status .. " " .. body .. "\n")
  end
end
function done(summary, latency, requests)
  io.write(string.format("LATENCY p50=%%.2f p90=%%.2f p99=%%.2f ms\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000))
end
"""


def sign_in(base: str, username: str) -> tuple[str, str]:
    s = requests.Session()
    s.headers["User-Agent"] = AGENT
    page = s.get(base + "/login").text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    r = s.post(
        base + "/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token},
        allow_redirects=False,
    )
    assert r.status_code == 302, r.text[:300]
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', s.get(base + "/counter").text)
    return f"session={s.cookies.get('session')}", csrf.group(1)


def lua_table(villages: list[dict]) -> str:
    parts = []
    for v in villages:
        cards = ",".join(json.dumps(c) for c in v["cards"])
        items = ",".join(str(i) for i in v["items"])
        parts.append(
            f"{{cookie={json.dumps(v['cookie'])},csrf={json.dumps(v['csrf'])},"
            f"items={{{items}}},cards={{{cards}}}}}"
        )
    return "return {" + ",".join(parts) + "}"


def run_app(url, tmp, villages, workers, connections, duration, think=0, lock_log=True) -> dict:
    from app.store.models import Redemption

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    lock_log_path = tmp / f"locks-{workers}.log"
    env = dict(
        os.environ,
        DATABASE_URL=url,
        SECRET_KEY=SECRET,
        INSTANCE_PATH=str(tmp / "live"),
        LEDGER_LOCK_LOG=str(lock_log_path) if lock_log else "",
    )
    log = open(tmp / f"gunicorn-{workers}.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}"]
        + ["--timeout", "120"]
        + os.environ.get("BENCH_GUNICORN", "").split()
        + ["wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(300):
            try:
                if requests.get(base + "/login", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        for v in villages:
            v["cookie"], v["csrf"] = sign_in(base, v["clerk"])
        data = tmp / "villages.lua"
        data.write_text(lua_table(villages))
        script = tmp / "redeem.lua"
        script.write_text(LUA % {"data": data, "agent": AGENT, "think": think})
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": SECRET})
        with app.app_context():
            before = db.session.scalar(select(db.func.count(Redemption.id)))
            db.session.remove()
        # warm up every worker, then measure
        subprocess.run(
            ["wrk", "-t2", f"-c{connections}", "-d3s", "-s", str(script), base],
            capture_output=True,
            text=True,
        )
        warm = settled(app)  # what the warm-up left in flight (queued at gunicorn) finished
        lock_log_path.write_text("")
        load_before = load()
        postgres = url.startswith("postgresql")  # SQLite works inside the app's processes
        workers_cpu = cpu_seconds(children(proc.pid))
        db_cpu = cpu_seconds(comm="postgres") if postgres else 0.0
        client_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = subprocess.run(
            ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script)]
            + [base],
            capture_output=True,
            text=True,
        ).stdout
        load_after = load()
        workers_cpu = cpu_seconds(children(proc.pid)) - workers_cpu
        db_cpu = cpu_seconds(comm="postgres") - db_cpu if postgres else 0.0
        client_cpu = rusage_seconds(resource.getrusage(resource.RUSAGE_CHILDREN), client_cpu)
        after = settled(app)
        with app.app_context():
            from app.ledger.chain import verify

            problems = [p for v in villages for p in verify(f"bench{villages.index(v)}", full=True)]
            db.session.remove()
            db.engine.dispose()
        requests_done = int(re.search(r"(\d+) requests in", out).group(1))
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        failed = int(non2xx.group(1)) if non2xx else 0
        lines = [line.split() for line in lock_log_path.read_text().split("\n") if line]
        holds, holds_granted = [float(f[1]) for f in lines], [float(f[-1]) for f in lines]
        latency = re.search(r"LATENCY p50=([\d.]+) p90=([\d.]+) p99=([\d.]+)", out)
        refusal = re.search(r"FIRST REFUSAL (.*)", out)
        return {
            "refusal": refusal.group(1)[:300] if refusal else "",
            "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50": float(latency.group(1)),
            "p90": float(latency.group(2)),
            "p99": float(latency.group(3)),
            "sent": requests_done,
            "failed": failed,
            "recorded": after - warm,
            "before": before,
            "lock_p50": percentile(holds, 50),
            "lock_p99": percentile(holds, 99),
            "lock_granted_p50": percentile(holds_granted, 50),
            "lock_granted_p99": percentile(holds_granted, 99),
            "locks": len(holds),
            "verify": "ok" if not problems else str(problems[0]),
            "load": f"{load_before} -> {load_after}",
            "cpu": cpu_line(requests_done, workers_cpu, db_cpu, client_cpu, "wrk"),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def settled(app) -> int:
    """The number of redemptions once it has stopped moving: requests wrk sent before it
    stopped may still wait in gunicorn's queue, and the ledger is verified only after them."""
    from app.store.models import Redemption

    last, still = -1, 0
    while still < 4:
        time.sleep(0.5)
        with app.app_context():
            count = db.session.scalar(select(db.func.count(Redemption.id)))
            db.session.remove()
        still, last = (still + 1, last) if count == last else (0, count)
    return last


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- the raw database


def raw_sqlite(path: str, village: dict, duration: float) -> float:
    """The same transaction shape with Python's sqlite3, WAL and synchronous=FULL, one writer
    (SQLite has one writer at a time: more would only wait)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=30000")
    vid = village["village_id"]
    households = [r[0] for r in conn.execute("SELECT id FROM household WHERE village_id=?", (vid,))]
    resident = dict(
        conn.execute("SELECT household_id, id FROM resident WHERE village_id=?", (vid,))
    )
    clerk = conn.execute("SELECT id FROM user WHERE username=?", (village["clerk"],)).fetchone()[0]
    venue = conn.execute("SELECT venue_id FROM store_item WHERE id=?", (village["items"][0],))
    venue = venue.fetchone()[0]
    item = village["items"][2]
    n, end, cpu = 0, time.perf_counter() + duration, time.process_time()
    holds = []  # BEGIN IMMEDIATE to COMMIT's return: the database's own lock hold, in ms
    while time.perf_counter() < end:
        hid = households[n % len(households)]
        n += 1
        began = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        seq, head = conn.execute(
            "SELECT ledger_seq, ledger_head FROM village WHERE id=?", (vid,)
        ).fetchone()
        (balance,) = conn.execute(
            "UPDATE household SET balance=balance-2 WHERE id=? AND balance>=2 RETURNING balance",
            (hid,),
        ).fetchone()
        conn.execute("UPDATE store_item SET stock=stock-1 WHERE id=? AND stock>=1", (item,))
        rid = conn.execute(
            "INSERT INTO redemption (village_id, venue_id, household_id, resident_id, clerk_id,"
            " request_id, source, total, balance_after, day, created_at) VALUES"
            " (?,?,?,?,?,?,'card',2,?,date('now'),datetime('now')) RETURNING id",
            (vid, venue, hid, resident[hid], clerk, f"raw-{n}-{time.time_ns()}", balance),
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO redemption_line (redemption_id, item_id, name, qty, points)"
            " VALUES (?,?,'x',1,2)",
            (rid, item),
        )
        conn.execute(
            "INSERT INTO ledger_entry (village_id, seq, household_id, kind, points, balance_after,"
            " reason, ref, created_at, prev_hash, hash) VALUES"
            " (?,?,?,'redeem',-2,?,'raw','',datetime('now'),?,?)",
            (vid, seq + 1, hid, balance, head, f"{n:064d}"),
        )
        conn.execute(
            "UPDATE village SET ledger_seq=?, ledger_head=? WHERE id=?", (seq + 1, f"{n:064d}", vid)
        )
        conn.execute("COMMIT")
        holds.append((time.perf_counter() - began) * 1000)
    cpu = time.process_time() - cpu
    conn.close()
    held = f"; lock held p50 {percentile(holds, 50):.2f} ms, p99 {percentile(holds, 99):.2f} ms"
    return n / duration, cpu_line(n, 0, cpu, 0, "client") + held


PGBENCH = """\\set h random(1, {n})
BEGIN;
SELECT ledger_seq AS seq FROM village WHERE id = {vid} FOR UPDATE \\gset
UPDATE household SET balance = balance - 2 WHERE id = {first} + :h - 1 AND balance >= 2 RETURNING balance AS bal \\gset
UPDATE store_item SET stock = stock - 1 WHERE id = {item} AND stock >= 1;
INSERT INTO redemption (village_id, venue_id, household_id, resident_id, clerk_id, request_id, source, total, balance_after, day, created_at) VALUES ({vid}, {venue}, {first} + :h - 1, {resident} + :h - 1, {clerk}, md5(random()::text), 'card', 2, :bal, current_date, now()) RETURNING id AS rid \\gset
INSERT INTO redemption_line (redemption_id, item_id, name, qty, points) VALUES (:rid, {item}, 'x', 1, 2);
INSERT INTO ledger_entry (village_id, seq, household_id, kind, points, balance_after, reason, ref, created_at, prev_hash, hash) VALUES ({vid}, :seq + 1, {first} + :h - 1, 'redeem', -2, :bal, 'raw', '', now(), md5(random()::text), md5(random()::text));
UPDATE village SET ledger_seq = :seq + 1, ledger_head = md5(random()::text) WHERE id = {vid};
END;
"""  # noqa: E501


# The same transaction at the app's concurrency, for the raw database's own latency and lock hold:
# the server's clock in the statement after the village row's lock (g: one round trip after the
# grant, so the hold is understated by it, in the raw database's favour), and again once the
# COMMIT has released it, read in the same pipeline as the COMMIT, as the app's lock log does.
PGBENCH_TIMED = PGBENCH.replace(
    "RETURNING balance AS bal",
    "RETURNING balance AS bal, extract(epoch FROM clock_timestamp()) * 1000 AS g",
).replace(
    "END;\n",
    "\\startpipeline\nEND;\nINSERT INTO raw_hold"
    " SELECT extract(epoch FROM clock_timestamp()) * 1000 - :g;\n\\endpipeline\n",
)


def raw_postgres_shape(url: str, village: dict) -> dict:
    """The ids pgbench's script names: the raw village's households, a resident, clerk, venue."""
    engine = create_engine(url)
    with engine.connect() as conn:
        vid = village["village_id"]
        first = conn.scalar(text("SELECT min(id) FROM household WHERE village_id=:v"), {"v": vid})
        n = conn.scalar(text("SELECT count(*) FROM household WHERE village_id=:v"), {"v": vid})
        resident = conn.scalar(text("SELECT min(id) FROM resident WHERE village_id=:v"), {"v": vid})
        clerk = conn.scalar(
            text('SELECT id FROM "user" WHERE username=:u'), {"u": village["clerk"]}
        )
        venue = conn.scalar(
            text("SELECT venue_id FROM store_item WHERE id=:i"), {"i": village["items"][0]}
        )
    engine.dispose()
    return dict(
        n=n,
        vid=vid,
        first=first,
        item=village["items"][2],
        venue=venue,
        resident=resident,
        clerk=clerk,
    )


def pgbench(url: str, schema: str, script: Path, clients: int, duration: int, *options):
    plain = url.replace("postgresql+psycopg://", "postgresql://").split("?")[0]
    env = dict(os.environ, PGOPTIONS=f"-c search_path={schema}")
    command = ["pgbench", "-n", "-c", str(clients), "-j", "2", "-T", str(duration), *options]
    out = subprocess.run(
        [*command, "-f", str(script), plain], capture_output=True, text=True, env=env
    )
    m = re.search(r"tps = ([\d.]+)", out.stdout)
    done = re.search(r"number of transactions actually processed: (\d+)", out.stdout)
    if not m or not done:
        raise RuntimeError(out.stdout + out.stderr)
    return float(m.group(1)), int(done.group(1))


def raw_postgres(url: str, schema: str, village: dict, duration: int, tmp: Path) -> float:
    """pgbench, 8 clients, the same transaction shape on one village (one hot head row)."""
    script = tmp / "raw.sql"
    script.write_text(PGBENCH.format(**raw_postgres_shape(url, village)))
    db_cpu, client_cpu = cpu_seconds(comm="postgres"), resource.getrusage(resource.RUSAGE_CHILDREN)
    tps, done = pgbench(url, schema, script, 8, duration)
    db_cpu = cpu_seconds(comm="postgres") - db_cpu
    client_cpu = rusage_seconds(resource.getrusage(resource.RUSAGE_CHILDREN), client_cpu)
    return tps, cpu_line(done, 0, db_cpu, client_cpu, "pgbench")


def raw_postgres_timed(
    url: str, schema: str, village: dict, clients: int, duration: int, tmp: Path
) -> str:
    """pgbench at the app's concurrency, prepared statements: the raw database's own latency
    (pgbench's per-transaction log) and lock hold (the village row's, on the server's clock)
    beside the app's. Its rate is not the ratio's baseline (8 clients, the plain protocol)."""
    script = tmp / "raw-timed.sql"
    script.write_text(PGBENCH_TIMED.format(**raw_postgres_shape(url, village)))
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE UNLOGGED TABLE {schema}.raw_hold (ms float8)"))
    prefix = tmp / "raw-latency"
    tps, _ = pgbench(
        url, schema, script, clients, duration, "-M", "prepared", "-l", f"--log-prefix={prefix}"
    )
    latencies = []  # ms; pgbench's log: client, transaction, latency in microseconds, ...
    for log in tmp.glob("raw-latency.*"):
        latencies += [int(line.split()[2]) / 1000 for line in log.read_text().splitlines()]
    with engine.begin() as conn:
        holds = [r[0] for r in conn.execute(text(f"SELECT ms FROM {schema}.raw_hold"))]
    engine.dispose()
    return (
        f"{tps:.0f} tx/s; p50 {percentile(latencies, 50):.1f} ms, p99 "
        f"{percentile(latencies, 99):.1f} ms; village row locked p50 {percentile(holds, 50):.2f}"
        f" ms, p99 {percentile(holds, 99):.2f} ms on the server's clock (its lock to the "
        f"COMMIT's end) over {len(holds)} transactions"
    )


# ---------------------------------------------------------------- main


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=None, help="PostgreSQL; SQLite when absent")
    parser.add_argument("--workers", default="2,4", help="gunicorn worker counts to try")
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--villages", type=int, default=1)
    parser.add_argument("--households", type=int, default=2000)
    parser.add_argument(
        "--no-lock-log",
        action="store_true",
        help="the app does not log its lock holds (a file append per lock, and on PostgreSQL "
        "two reads of the server's clock): the rate without the measurement's own cost",
    )
    parser.add_argument(
        "--think",
        type=int,
        default=0,
        help="ms each connection waits after an answer before its next request (0: none)",
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("needs wrk: apt-get install wrk")

    scratch = ScratchDatabase(args.database_url, "bench-counter")
    tmp, url, schema = scratch.tmp, scratch.url, scratch.schema
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": SECRET})
    kind = scratch.kind
    print(f"{kind}: {args.villages} village(s) of {args.households} households; {load()}")
    # One more village for the raw baseline: its made-up entries must not touch the app's chains.
    *villages, raw_village = setup(app, args.villages + 1, args.households)
    try:
        if schema:
            raw, raw_cpu = raw_postgres(url, schema, raw_village, args.duration, tmp)
            raw_name = "pgbench, 8 clients, one village"
        else:
            raw, raw_cpu = raw_sqlite(str(tmp / "bench.db"), raw_village, args.duration)
            raw_name = "sqlite3, WAL, synchronous=FULL, one writer"
        print(f"raw {raw_name}: {raw:.0f} tx/s; {raw_cpu} ({load()})")
        if schema:
            timed = raw_postgres_timed(
                url, schema, raw_village, args.connections, args.duration, tmp
            )
            print(f"raw pgbench, {args.connections} clients, prepared: {timed} ({load()})")
        for workers in [int(w) for w in args.workers.split(",")]:
            r = run_app(
                url,
                tmp,
                villages,
                workers,
                args.connections,
                args.duration,
                args.think,
                lock_log=not args.no_lock_log,
            )
            if args.no_lock_log:
                held = "lock holds not logged (--no-lock-log)"
            elif schema:  # pipelined: the lock is granted some time after it was sent
                held = (
                    f"ledger lock held p50 {r['lock_granted_p50']:.2f} ms, p99 "
                    f"{r['lock_granted_p99']:.2f} ms on the server's clock (its grant to the "
                    f"COMMIT's end), p50 {r['lock_p50']:.2f} ms, p99 {r['lock_p99']:.2f} ms "
                    f"from its sending to the answers back in the app (counts the wait for it)"
                )
            else:
                held = f"ledger lock held p50 {r['lock_p50']:.2f} ms, p99 {r['lock_p99']:.2f} ms"
            if not args.no_lock_log:
                held += f" over {r['locks']} locks"
            print(
                f"app, gunicorn -w {workers}, {args.connections} connections"
                + (f" each waiting {args.think} ms after an answer" if args.think else "")
                + f": {r['rps']:.0f} "
                f"redemptions/s = {r['rps'] / raw:.2f} x raw; p50 {r['p50']:.1f} ms, "
                f"p90 {r['p90']:.1f} ms, p99 {r['p99']:.1f} ms; {held}; "
                f"{r['sent']} sent, {r['failed']} refused, {r['recorded']} recorded; "
                f"verify {r['verify']}; {r['load']}"
            )
            print(f"  {r['cpu']}")
            if r["refusal"]:
                print("  first refusal:", r["refusal"])
    finally:
        scratch.close()


if __name__ == "__main__":
    main()
