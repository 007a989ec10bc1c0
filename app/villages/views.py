from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select

from ..auth.access import roles_required, village_id
from ..auth.models import User
from ..database import utcnow
from ..errors import DomainError
from ..extensions import db
from ..households.models import Household
from ..ops import housekeeping
from ..villages.models import AuditLog
from . import county as county_figures
from . import services
from .forms import SettingsForm, VillageForm
from .models import Village
from .settings import OFFLINE_CAP_HINT, SETTINGS, format_value, parse_thresholds, parse_tiers

bp = Blueprint("villages", __name__)


@bp.route("/admin/settings", methods=["GET", "POST"])
@roles_required("village_admin")
def settings():
    village = db.session.get(Village, village_id())
    form = SettingsForm(obj=None if _posted() else _as_form_data(village))
    if form.validate_on_submit():
        try:
            values = {
                name: getattr(form, name).data
                for name in (
                    "notice_days",
                    "card_pin_required",
                    "card_daily_cap",
                    "gifts_earn_points",
                    "notice_show_names",
                    "notice_public_days",
                )
            }
            if form.offline_daily_cap.data is not None:
                values["offline_daily_cap"] = form.offline_daily_cap.data
            values["star_thresholds"] = parse_thresholds(form.star_thresholds.data)
            values["meal_age_tiers"] = parse_tiers(form.meal_age_tiers.data or "")
            changed = services.update_settings(village.id, values, current_user.id)
        except DomainError as e:
            form.form_errors.append(str(e))
        else:
            flash(_("Settings saved.") if changed else _("Nothing changed."), "ok")
            return redirect(url_for("villages.settings"))
    status = 422 if form.errors or form.form_errors else 200
    return render_template(
        "villages/settings.html",
        form=form,
        history=_history(village.id),
        village=village,
        retention=housekeeping.retention(),
        offline_cap_hint=OFFLINE_CAP_HINT,
    ), status


def _history(village_id: int) -> list[tuple]:
    """The last setting changes as (when, setting label, "old → new", who), in the reader's
    language: the log stores code names and True/False."""
    rows = db.session.execute(
        select(AuditLog, User.display_name, User.username)
        .outerjoin(User, User.id == AuditLog.user_id)
        .where(AuditLog.village_id == village_id, AuditLog.action == "settings.change")
        .order_by(AuditLog.id.desc())
        .limit(20)
    ).all()
    words = {"True": _("yes"), "False": _("no")}
    return [
        (
            log.created_at,
            SETTINGS[log.target][0] if log.target in SETTINGS else log.target,
            " → ".join(words.get(part, part) for part in log.detail.split(" → ")),
            name or username or "",
        )
        for log, name, username in rows
    ]


def _posted() -> bool:
    from flask import request

    return request.method == "POST"


class _as_form_data:
    """Present list settings as the text the form edits."""

    def __init__(self, village: Village):
        self._v = village

    def __getattr__(self, name):
        value = getattr(self._v, name)
        return format_value(value) if isinstance(value, list) else value


@bp.route("/county/villages", methods=["GET", "POST"])
@roles_required("county_admin")
def county():
    form = VillageForm()
    if form.validate_on_submit():
        try:
            services.create_village(
                form.code.data,
                form.name.data,
                form.admin_username.data,
                form.admin_password.data,
                current_user.id,
            )
        except DomainError as e:
            form.form_errors.append(str(e))
        else:
            flash(_("Village created."), "ok")
            return redirect(url_for("villages.county"))
    # One grouped query over an index, not a scan of the ledger: balances are stored.
    figures = {
        vid: (n, total or 0)
        for vid, n, total in db.session.execute(
            select(Household.village_id, func.count(Household.id), func.sum(Household.balance))
            .where(Household.status == "active")
            .group_by(Household.village_id)
        )
    }
    villages = db.session.scalars(select(Village).order_by(Village.name)).all()
    status = 422 if form.errors or form.form_errors else 200
    return render_template(
        "villages/county.html", form=form, villages=villages, figures=figures
    ), status


def _county_table(rows):
    from ..reports.exports import Table

    states = county_figures.LEDGER_STATES
    return Table(
        "county",
        _("Villages"),
        [
            _("Village"),
            _("Code"),
            _("Households"),
            _("Points issued"),
            _("Points redeemed"),
            _("Points outstanding"),
            _("Participation this year"),
            _("Last meeting"),
            _("Published chain head"),
            _("Ledger"),
        ],
        [
            (
                r.village.name,
                r.village.code,
                r.households,
                r.issued,
                r.redeemed,
                r.outstanding,
                round(r.participation, 4),
                r.last_meeting.isoformat() if r.last_meeting else "",
                f"{r.head.seq}:{r.head.hash[:12]}" if r.head else "",
                str(states[r.ledger_state]),
            )
            for r in rows
        ],
    )


@bp.route("/county")
@roles_required("county_admin")
def overview():
    rows = county_figures.overview(utcnow())
    return render_template(
        "villages/overview.html",
        rows=rows,
        states=county_figures.LEDGER_STATES,
        totals=[
            sum(getattr(r, k) for r in rows)
            for k in ("households", "issued", "redeemed", "outstanding")
        ],
    )


@bp.route("/county.<fmt>")
@roles_required("county_admin")
def overview_export(fmt: str):
    from ..reports import exports
    from ..reports.views import XLSX, download

    table = _county_table(county_figures.overview(utcnow()))
    if fmt == "csv":
        return download(exports.csv_chunks(table), "county.csv", "text/csv; charset=utf-8")
    if fmt == "xlsx":
        return download(exports.file_chunks(exports.xlsx_file(table)), "county.xlsx", XLSX)
    abort(404)
