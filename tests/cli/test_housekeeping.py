"""`flask housekeeping` deletes what traffic leaves behind and nobody needs (pay codes no longer
accepted, attempt counters of past windows, expired sessions) after retentions the village admin
can read on the settings page: with the same traffic every day the tables stop growing."""

from datetime import timedelta

from sqlalchemy import func, select

from app.auth.models import LoginThrottle, UserSession
from app.database import transaction
from app.extensions import db
from app.ledger.models import LedgerEntry
from app.store.models import PayCode

from .. import factories
from ..conftest import csrf_token
from ..web.helpers import text_of

TABLES = (PayCode, LoginThrottle, UserSession)


def rows() -> dict[str, int]:
    db.session.rollback()
    return {m.__tablename__: db.session.scalar(select(func.count()).select_from(m)) for m in TABLES}


def a_day_passes() -> None:
    """Every timestamp of the three tables one day earlier: as if a day went by."""
    day = timedelta(days=1)
    with transaction():
        for model, columns in (
            (PayCode, ("issued_at", "expires_at", "held_until", "used_at")),
            (LoginThrottle, ("window_start", "locked_until")),
            (UserSession, ("created_at", "expires_at")),
        ):
            for row in db.session.scalars(select(model)):  # in Python: SQLite has no interval
                for c in columns:
                    if getattr(row, c) is not None:
                        setattr(row, c, getattr(row, c) - day)


def sign_in(client, username: str, password: str = factories.PASSWORD, addr="10.0.0.1"):
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf_token(client)},
        environ_base={"REMOTE_ADDR": addr},
    )


def test_the_database_stops_growing_with_traffic_that_leaves_no_record(app, village, runner):
    app.config.update(
        PAY_CODE_RETENTION_DAYS=2, THROTTLE_RETENTION_DAYS=1, SESSION_RETENTION_DAYS=1
    )
    villager = factories.user(village, "villager")
    clerk = factories.user(village, "clerk")
    phone = app.test_client()
    assert sign_in(phone, villager.username).status_code == 302
    entries = db.session.scalar(select(func.count(LedgerEntry.id)))
    seen = []
    for day in range(8):
        for i in range(3):  # wrong passwords from new addresses for new names
            bad = sign_in(app.test_client(), f"nobody{day}x{i}", "wrong", f"10.1.{day}.{i}")
            assert bad.status_code == 401
        for _ in range(2):  # the clerk signs in on two browsers and never signs out
            assert sign_in(app.test_client(), clerk.username).status_code == 302
        shown = phone.get("/me/code")  # a pay code shown, never used
        assert shown.status_code == 200, (day, shown.headers.get("Location"))
        before = rows()
        a_day_passes()
        done = runner.invoke(args=["housekeeping"])
        assert done.exit_code == 0, done.output
        assert "deleted" in done.output
        after = rows()
        seen.append((before, after))
    peaks = [sum(before.values()) for before, _ in seen]
    # Growth for the first days (within the retention), then the same every day.
    assert peaks[3] == peaks[4] == peaks[5] == peaks[6] == peaks[7], peaks
    assert peaks[0] < peaks[7] < 8 * peaks[0]
    assert db.session.scalar(select(func.count(LedgerEntry.id))) == entries
    # The villager's lasting session (180 days) is kept: only expired ones go.
    assert phone.get("/me/code").status_code == 200


def test_nothing_still_valid_is_deleted(app, village, runner):
    villager = factories.user(village, "villager")
    phone = app.test_client()
    assert sign_in(phone, villager.username).status_code == 302
    assert phone.get("/me/code").status_code == 200
    for _ in range(3):
        sign_in(app.test_client(), villager.username, "wrong", "10.9.9.9")
    before = rows()
    assert runner.invoke(args=["housekeeping"]).exit_code == 0
    assert rows() == before
    assert phone.get("/me/code").status_code == 200


def test_the_village_admin_sees_the_retentions(client, login_as):
    login_as("village_admin")
    html = text_of(client.get("/admin/settings"))
    assert 'id="retention"' in html
    assert "7" in html.split('id="retention"')[1].split("</ul>")[0]


def test_an_import_checked_and_never_confirmed_goes_a_confirmed_one_stays(app, village, runner):
    from app.database import utcnow
    from app.households.models import ImportBatch

    old = utcnow() - timedelta(days=8)
    with transaction():
        for sha, status, created in (
            ("a" * 64, "preview", old),  # never confirmed, past the 7 days: goes
            ("b" * 64, "imported", old),  # stops the same file being imported twice: stays
            ("c" * 64, "preview", utcnow()),  # checked today: the admin may still confirm it
        ):
            db.session.add(
                ImportBatch(village_id=village.id, sha256=sha, status=status, created_at=created)
            )
    done = runner.invoke(args=["housekeeping"])
    assert done.exit_code == 0, done.output
    db.session.rollback()
    left = {b.sha256[0]: b.status for b in db.session.scalars(select(ImportBatch))}
    assert left == {"b": "imported", "c": "preview"}
