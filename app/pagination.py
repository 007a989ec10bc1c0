"""Offset pagination for lists that are sorted by an indexed column."""

from dataclasses import dataclass

from flask import current_app
from sqlalchemy import Select, func, select

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
