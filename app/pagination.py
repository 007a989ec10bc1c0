"""Offset pagination for lists that are sorted by an indexed column."""

from dataclasses import dataclass

from flask import current_app
from sqlalchemy import Select, func, select, tuple_

from .extensions import db


@dataclass
class Page:
    items: list
    page: int
    pages: int
    total: int

    @classmethod
    def of(cls, query: Select, page_arg, per_page: int | None = None) -> "Page":
        per_page = per_page or current_app.config["PAGE_SIZE"]
        try:
            page = max(1, int(page_arg or 1))
        except (TypeError, ValueError):
            page = 1
        total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
        pages = max(1, -(-total // per_page))
        page = min(page, pages)
        items = db.session.scalars(query.limit(per_page).offset((page - 1) * per_page)).all()
        return cls(items=items, page=page, pages=pages, total=total)


@dataclass
class KeysetPage:
    """One page of a list sorted by indexed columns that are unique together, read as
    `(columns) > after`: the last page of 100,000 rows costs what the first costs, and nothing
    counts the whole list. `after` travels in the address as the columns' values joined by a
    unit separator."""

    items: list
    after: str | None  # pass as `after` for the next page; None on the last page
    first: bool

    @classmethod
    def of(cls, query: Select, columns, after: str | None, per_page: int | None = None):
        per_page = per_page or current_app.config["PAGE_SIZE"]
        columns = columns if isinstance(columns, tuple | list) else (columns,)
        if after:
            values = after.split(SEP)
            if len(values) != len(columns):
                values = [after] + [""] * (len(columns) - 1)
            query = query.where(tuple_(*columns) > tuple_(*values))
        rows = db.session.scalars(query.order_by(*columns).limit(per_page + 1)).all()
        more = len(rows) > per_page
        rows = rows[:per_page]
        last = SEP.join(str(getattr(rows[-1], c.key)) for c in columns) if more else None
        return cls(items=rows, after=last, first=not after)


SEP = "\x1f"
