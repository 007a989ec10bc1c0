"""Exports and reports of the signed-in admin's village."""

from urllib.parse import quote

from flask import Blueprint, Response, abort, request, stream_with_context

from ..auth.access import roles_required, village_id
from ..database import utcnow
from . import exports

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
