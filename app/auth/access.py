"""Who may do what: role decorators and the one place that scopes queries to a village."""

from functools import wraps

from flask import abort, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import Select, select

from ..extensions import db
from ..store import nav as store_nav

HOME_BY_ROLE = {
    "county_admin": "villages.county",
    "village_admin": "households.index",
    "scorer": "scoring.index",
    "clerk": "store.counter",
    "villager": "ledger.me",
}


def roles_required(*roles: str):
    """Signed in, with one of `roles`; otherwise 403 (or the login page when signed out)."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if current_user.role not in roles:
                abort(403)
            if current_user.role != "county_admin" and current_user.village_id is None:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def village_id() -> int:
    """The signed-in user's village; every village query goes through `scoped` with it."""
    vid = current_user.village_id
    if vid is None:
        abort(403)
    return vid


def scoped(model) -> Select:
    """SELECT model rows of the signed-in user's village only."""
    return select(model).where(model.village_id == village_id())


def get_scoped_or_404(model, ident: int):
    obj = db.session.get(model, ident)
    if obj is None or obj.village_id != village_id():
        abort(404)
    return obj


def nav_items(user) -> list[tuple[str, str]]:
    if not getattr(user, "is_authenticated", False):
        return []
    items = {
        "county_admin": [
            ("villages.overview", _l("County overview")),
            ("villages.county", _l("Villages")),
        ],
        "village_admin": [
            ("households.index", _l("Households")),
            ("scoring.index", _l("Scoring")),
            ("auth.users", _l("Users")),
            ("villages.settings", _l("Settings")),
            *store_nav.ADMIN,
            ("reports.index", _l("Reports")),
            ("certificates.index", _l("Certificates")),
        ],
        "scorer": [
            ("scoring.index", _l("Scoring")),
            ("households.index", _l("Households")),
            ("reports.index", _l("Reports")),
        ],
        "clerk": store_nav.CLERK,
        "villager": [
            ("ledger.me", _l("My points")),
            ("scoring.my_board", _l("Notices")),
            *store_nav.VILLAGER,
        ],
    }[user.role]
    return [(url_for(endpoint), label) for endpoint, label in items]
