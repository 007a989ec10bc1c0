"""Test data made through the services, so tests start from states the app itself produces."""

import itertools

from app.auth.services import create_user
from app.households.services import HouseholdData, create_household, save_resident
from app.villages.models import Village
from app.villages.services import create_village

PASSWORD = "test-pass-1"
_seq = itertools.count(1)


def next_id() -> int:
    return next(_seq)


def village(code: str, name: str) -> Village:
    return create_village(code, name, f"{code}-first-admin", PASSWORD, None)


def user(v: Village, role: str, *, username: str | None = None, resident=None):
    if role == "villager" and resident is None:
        h = household(v)
        resident = save_resident(
            v.id,
            h.id,
            name="村民" + str(next(_seq)),
            phone=f"139{next(_seq):08d}",
            birth_year=1960,
            actor_id=None,
        )
    name = username or (resident.phone if resident else f"{role}{next(_seq)}")
    return create_user(
        village_id=None if role == "county_admin" else v.id,
        role=role,
        username=name,
        password=PASSWORD,
        resident_id=resident.id if resident else None,
    )


def household(
    v: Village,
    *,
    number: str | None = None,
    opening: int = 0,
    head: str = "王建国",
    group: str = "一组",
):
    return create_household(
        v.id,
        HouseholdData(
            number=number or f"{next(_seq):04d}",
            head_name=head,
            group_name=group,
            opening_balance=opening,
        ),
        None,
    )
