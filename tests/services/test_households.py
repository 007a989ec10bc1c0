"""Household services under concurrency: a household number and a phone stay unique in a
village however many admins save at once, on SQLite and on PostgreSQL."""

import threading

from sqlalchemy import func, select

from app.errors import InvalidInput
from app.extensions import db
from app.households.models import Household, Resident
from app.households.services import HouseholdData, create_household, save_resident

from .. import factories

THREADS = 8


def run_at_once(app, work) -> list:
    """Run work(i) in THREADS threads released together; return each result or exception."""
    barrier = threading.Barrier(THREADS)
    results: list = [None] * THREADS

    def run(i: int) -> None:
        with app.app_context():
            try:
                barrier.wait()
                work(i)
                results[i] = "ok"
            except Exception as e:  # noqa: BLE001 - the test inspects what each thread got
                results[i] = e
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    db.session.rollback()
    return results


def test_same_household_number_saved_at_once_is_created_once(app, village):
    village_id = village.id
    db.session.commit()
    results = run_at_once(
        app,
        lambda i: create_household(
            village_id, HouseholdData(number="0001", head_name=f"户主{i}"), None
        ),
    )
    assert results.count("ok") == 1, results
    assert all(isinstance(r, InvalidInput) for r in results if r != "ok"), results
    assert db.session.scalar(select(func.count(Household.id))) == 1


def test_same_phone_saved_at_once_belongs_to_one_resident(app, village):
    village_id = village.id
    household_id = factories.household(village).id
    db.session.commit()
    results = run_at_once(
        app,
        lambda i: save_resident(
            village_id,
            household_id,
            name=f"村民{i}",
            phone="13700000001",
            birth_year=None,
            actor_id=None,
        ),
    )
    assert results.count("ok") == 1, results
    assert all(isinstance(r, InvalidInput) for r in results if r != "ok"), results
    assert (
        db.session.scalar(select(func.count(Resident.id)).where(Resident.phone == "13700000001"))
        == 1
    )
