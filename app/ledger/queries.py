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


def earned_this_year(household) -> tuple[int, int]:
    """(year, points earned in it): one read by the (household, year) index."""
    from ..database import utcnow
    from .models import HouseholdYear
    from .services import local_year

    year = local_year(utcnow())
    earned = db.session.scalar(
        select(HouseholdYear.earned).where(
            HouseholdYear.household_id == household.id, HouseholdYear.year == year
        )
    )
    return year, earned or 0


def stars(household) -> int:
    """The household's stars: points earned this year against the village's thresholds."""
    from ..villages.models import Village
    from ..villages.settings import stars_for

    thresholds = db.session.get(Village, household.village_id).star_thresholds or []
    return stars_for(earned_this_year(household)[1], thresholds)


def standing(household) -> dict:
    """Points earned this year, stars, and the rank in the village as last computed (with when,
    and out of how many): reads by key, no count over the village."""
    from .models import HouseholdRank

    year, earned = earned_this_year(household)
    ranked = db.session.get(HouseholdRank, household.id)
    if ranked is not None and ranked.year != year:
        ranked = None  # last year's rank means nothing in January
    return {
        "year": year,
        "earned": earned,
        "stars": stars(household),
        "rank": ranked.rank if ranked else None,
        "of": ranked.of if ranked else None,
        "ranked_at": ranked.computed_at if ranked else None,
    }
