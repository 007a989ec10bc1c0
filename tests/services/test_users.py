"""Unique names under concurrency: a username or a village code is taken once however many
requests save it at once, and the losers get the same message as for a name taken long ago."""

from sqlalchemy import func, select

from app.auth.models import User
from app.auth.services import create_user
from app.errors import InvalidInput
from app.extensions import db

from .test_households import run_at_once


def test_same_username_created_at_once_is_created_once(app, village):
    village_id = village.id
    db.session.commit()
    results = run_at_once(
        app,
        lambda i: create_user(
            village_id=village_id, role="scorer", username="grid.wang", password="long-pass-1"
        ),
    )
    assert results.count("ok") == 1, results
    losers = [r for r in results if r != "ok"]
    assert all(isinstance(r, InvalidInput) and "grid.wang" in str(r) for r in losers), results
    assert db.session.scalar(select(func.count(User.id)).where(User.username == "grid.wang")) == 1


def test_same_village_code_created_at_once_is_created_once(app, village):
    from app.villages.models import Village
    from app.villages.services import create_village

    db.session.commit()
    results = run_at_once(
        app,
        lambda i: create_village("shiqiao", "石桥村", f"shiqiao-admin{i}", "long-pass-1", None),
    )
    assert results.count("ok") == 1, results
    losers = [r for r in results if r != "ok"]
    assert all(isinstance(r, InvalidInput) and "shiqiao" in str(r) for r in losers), results
    assert db.session.scalar(select(func.count(Village.id)).where(Village.code == "shiqiao")) == 1
    assert db.session.scalar(select(func.count(User.id)).where(User.village_id.is_not(None))) == 2
