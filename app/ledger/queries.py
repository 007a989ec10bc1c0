"""Read-side queries of the ledger. Pages read stored balances; none scans the ledger."""

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ..extensions import db
from .models import LedgerEntry

PAGE = 20


def entries_page(household_id: int, before: int | None, per_page: int = PAGE):
    """A household's entries, newest first, `per_page` at a time, older than entry id `before`.

    Keyset pagination over the (household_id, id) index: page 500 costs what page 1 costs.
    Returns (entries, id to pass as `before` for the next page or None).
    """
    q = select(LedgerEntry).where(LedgerEntry.household_id == household_id)
    if before:
        q = q.where(LedgerEntry.id < before)
    rows = db.session.scalars(
        q.order_by(LedgerEntry.id.desc())
        .limit(per_page + 1)
        .options(selectinload(LedgerEntry.created_by))
    ).all()
    older = rows[per_page - 1].id if len(rows) > per_page else None
    return rows[:per_page], older


def standing(household) -> dict:
    """A household's points earned this year, its stars (village thresholds) and its rank in
    the village: two indexed reads, no sum over the ledger."""
    from sqlalchemy import func

    from ..database import utcnow
    from ..villages.models import Village
    from ..villages.settings import stars_for
    from .models import HouseholdYear
    from .services import local_year

    year = local_year(utcnow())
    earned = (
        db.session.scalar(
            select(HouseholdYear.earned).where(
                HouseholdYear.household_id == household.id, HouseholdYear.year == year
            )
        )
        or 0
    )
    ahead = (
        db.session.scalar(
            select(func.count(HouseholdYear.id)).where(
                HouseholdYear.village_id == household.village_id,
                HouseholdYear.year == year,
                HouseholdYear.earned > earned,
            )
        )
        or 0
    )
    thresholds = db.session.get(Village, household.village_id).star_thresholds or []
    return {
        "year": year,
        "earned": earned,
        "stars": stars_for(earned, thresholds),
        "rank": ahead + 1,
    }
