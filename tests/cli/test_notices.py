"""`flask notices post`: posts each item whose notice ended exactly once, even when two
processes run it at the same moment."""

import os
import re
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import func, select

from app.database import utcnow
from app.extensions import db
from app.ledger.models import LedgerEntry
from app.scoring import services
from app.scoring.models import ChainHead, NoticeItem
from app.scoring.services import RuleData

from .. import factories

ROOT = Path(__file__).resolve().parents[2]


def due_items(village, n: int, *, ended: bool = True) -> list:
    households = [factories.household(village) for _ in range(n)]
    r = services.save_rule(village.id, RuleData("public_service", "清洁日", 10), None)
    p = services.create_proposal(
        village.id,
        household_ids=[h.id for h in households],
        rule_id=r.id,
        occurred_on=date.today() - timedelta(days=1),
        actor_id=None,
    )
    held = date.today() - timedelta(days=7)  # held before it closes (a future meeting cannot)
    m = services.create_meeting(village.id, held_on=held, title="评议会", actor_id=None)
    services.decide(village.id, m.id, p.id, outcome="approve", actor_id=None)
    closed = utcnow() - timedelta(days=6 if ended else 1)
    services.close_meeting(village.id, m.id, None, now=closed)
    db.session.commit()
    return households


def entries() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count(LedgerEntry.id)))


def test_notices_post_posts_due_items_once_and_records_the_head(runner, village):
    due_items(village, 3)
    due_items(village, 2, ended=False)
    result = runner.invoke(args=["notices", "post"])
    assert result.exit_code == 0, result.output
    assert "posted 3" in result.output
    again = runner.invoke(args=["notices", "post"])
    assert "posted 0" in again.output
    assert entries() == 3
    statuses = db.session.scalars(select(NoticeItem.status)).all()
    assert sorted(statuses) == ["notice"] * 2 + ["posted"] * 3
    head = db.session.scalar(select(ChainHead))
    assert head.seq == 3
    verify = runner.invoke(
        args=["ledger", "verify", "--village", village.code, "--head", f"3:{head.hash[:12]}"]
    )
    assert verify.exit_code == 0, verify.output


def test_two_processes_posting_at_once_post_each_item_once(app, village, database_url, tmp_path):
    households = due_items(village, 40)
    env = dict(
        os.environ,
        DATABASE_URL=database_url,
        FLASK_APP="wsgi.py",
        SECRET_KEY="cli-test-secret",
        INSTANCE_PATH=str(tmp_path / "cli-instance"),
    )
    flask = [sys.executable, "-m", "flask", "notices", "post"]
    procs = [
        subprocess.Popen(flask, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    for p, (_out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err.decode()
    posted = [int(re.search(rb"posted (\d+)", out).group(1)) for out, _err in outputs]
    print("posted by each process:", posted)
    assert sum(posted) == 40
    assert entries() == 40
    db.session.rollback()
    from app.households.models import Household

    assert all(db.session.get(Household, h.id).balance == 10 for h in households)
    from app.ledger.chain import verify

    assert verify() == []
