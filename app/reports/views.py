"""Exports and reports of the signed-in admin's village."""

from urllib.parse import quote

from flask import Blueprint, Response, abort, render_template, request, stream_with_context, url_for
from flask_babel import gettext as _

from ..auth.access import roles_required, village_id
from ..database import utcnow
from . import charts, exports, reports

bp = Blueprint("reports", __name__)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def download(body, filename: str, mimetype: str) -> Response:
    resp = Response(body, mimetype=mimetype)
    resp.headers["Content-Disposition"] = (
        f"attachment; filename={filename.encode('ascii', 'replace').decode()}; "
        f"filename*=UTF-8''{quote(filename)}"
    )
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.route("/admin/exports/<what>.<fmt>")
@roles_required("village_admin")
def export(what: str, fmt: str):
    if what not in exports.EXPORTS or fmt not in ("xlsx", "csv"):
        abort(404)
    vid = village_id()
    if what == "households":
        table = exports.households(vid, utcnow())
        suffix = ""
    else:
        first, last = exports.parse_period(request.args.get("from"), request.args.get("to"))
        table = exports.EXPORTS[what](vid, first, last)
        suffix = "".join(f"_{d.isoformat()}" for d in (first, last) if d)
    filename = f"{table.name}{suffix}.{fmt}"
    if fmt == "csv":
        return download(
            stream_with_context(exports.csv_chunks(table)), filename, "text/csv; charset=utf-8"
        )
    return download(exports.file_chunks(exports.xlsx_file(table)), filename, XLSX)


def _period():
    from ..ledger.services import LOCAL_TZ

    today = (utcnow() + LOCAL_TZ).date()
    return reports.Period.parse(request.args.get("year"), request.args.get("month"), today)


@bp.route("/admin/reports")
@roles_required("village_admin", "scorer")
def index():
    period = _period()
    report = reports.build(village_id(), period)
    trend = report.trend
    return render_template(
        "reports/index.html",
        report=report,
        period=period,
        category_label=reports.category_label,
        chart_categories=charts.bars(
            [(reports.category_label(c), net) for c, _a, _d, _r, net in report.by_category],
            _("Net points by category"),
            charts.PLUS,
        ),
        chart_groups=charts.bars(
            [(g or "—", net) for g, _a, _d, net in report.by_group],
            _("Net points by group"),
            charts.PLUS,
        ),
        chart_venues=charts.bars(
            [(v, pts) for v, _n, pts in report.by_venue], _("Points redeemed by venue")
        ),
        chart_trend=charts.trend(
            [m for m, *_ in trend],
            [
                (_("Awarded"), [a for _m, a, _d, _r in trend], charts.PLUS),
                (_("Deducted"), [-d for _m, _a, d, _r in trend], charts.MINUS),
                (_("Redeemed"), [r for _m, _a, _d, r in trend], charts.NEUTRAL),
            ],
            _("12-month trend"),
        ),
    )


@bp.route("/admin/reports.xlsx")
@roles_required("village_admin", "scorer")
def download_xlsx():
    period = _period()
    report = reports.build(village_id(), period)
    return download(exports.file_chunks(reports.xlsx(report)), f"report_{period.label}.xlsx", XLSX)


@bp.route("/scoring/meetings/<int:meeting_id>/notice")
@roles_required("village_admin", "scorer")
def meeting_notice(meeting_id: int):
    """A meeting's approved items on one A4 sheet for the village's paper notice board (公示栏):
    names as the village's privacy setting allows, a QR to the online board, the chain head."""
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    from ..auth.access import get_scoped_or_404
    from ..extensions import db
    from ..scoring.models import Meeting, NoticeItem
    from ..scoring.queries import heads
    from ..store import qr
    from ..store.views import base_url
    from ..villages.models import Village

    meeting = get_scoped_or_404(Meeting, meeting_id)
    village = db.session.get(Village, meeting.village_id)
    items = db.session.scalars(
        select(NoticeItem)
        .where(NoticeItem.meeting_id == meeting.id, NoticeItem.status != "cancelled")
        .order_by(NoticeItem.points.desc(), NoticeItem.id)
        .options(selectinload(NoticeItem.household))
    ).all()
    board = base_url() + url_for("scoring.board", code=village.code)
    latest = heads(village.id)
    return render_template(
        "reports/notice.html",
        meeting=meeting,
        village=village,
        items=items,
        board_url=board,
        board_qr=qr.svg(board, _("The online notice board")),
        head=latest[0] if latest else None,
    )
