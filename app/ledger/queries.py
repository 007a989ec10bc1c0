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
