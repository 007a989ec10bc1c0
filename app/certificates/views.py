"""Points certificates: the admin's list, issue, print and revoke; the public verification page."""

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select

from ..auth import throttle
from ..auth.access import roles_required, village_id
from ..errors import DomainError
from ..extensions import db
from ..households.models import Household
from ..store import qr
from ..store.views import base_url
from ..villages.models import Village
from . import services
from .models import Certificate

bp = Blueprint("certificates", __name__)

PAGE = 50
# Unknown serials one client address may look up per hour: a person mistyping a serial from
# paper is never stopped, a guesser gets 30 tries an hour against 2^80 serials; other addresses
# are not affected.
UNKNOWN_PER_HOUR = 30


def verify_url(village: Village, serial: str) -> str:
    return base_url() + url_for("certificates.verify", code=village.code, serial=serial)


@bp.route("/admin/certificates", methods=["GET", "POST"])
@roles_required("village_admin")
def index():
    vid = village_id()
    form = FlaskForm()
    error = None
    number = (request.form.get("number") or request.args.get("number") or "").strip()[:20]
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        household = db.session.scalar(
            select(Household).where(Household.village_id == vid, Household.number == number)
        )
        if household is None:
            error = _("There is no household %(number)s.", number=number or "—")
        else:
            try:
                cert = services.issue(vid, household.id, current_user.id)
            except DomainError as e:
                error = str(e)
            else:
                flash(_("Certificate issued."), "ok")
                return redirect(url_for("certificates.show", serial=cert.serial))
    before = request.args.get("before", type=int)
    q = (
        select(Certificate, Household.number, Household.head_name)
        .join(Household, Household.id == Certificate.household_id)
        .where(Certificate.village_id == vid)
    )
    if before:
        q = q.where(Certificate.id < before)
    rows = db.session.execute(q.order_by(Certificate.id.desc()).limit(PAGE + 1)).all()
    older = rows[PAGE - 1][0].id if len(rows) > PAGE else None
    return render_template(
        "certificates/index.html",
        rows=rows[:PAGE],
        older=older,
        form=form,
        number=number,
        error=error,
    ), 422 if error else 200


def _own(serial: str) -> Certificate:
    cert = db.session.scalar(
        select(Certificate).where(Certificate.serial == services.normalise_serial(serial))
    )
    if cert is None or cert.village_id != village_id():
        abort(404)
    return cert


@bp.route("/admin/certificates/<serial>")
@roles_required("village_admin")
def show(serial: str):
    cert = _own(serial)
    village = db.session.get(Village, cert.village_id)
    url = verify_url(village, cert.serial)
    return render_template(
        "certificates/certificate.html",
        cert=cert,
        village=village,
        url=url,
        qr_svg=qr.svg(url, _("Verify this certificate")),
        form=FlaskForm(),
    )


@bp.route("/admin/certificates/<serial>/revoke", methods=["POST"])
@roles_required("village_admin")
def revoke(serial: str):
    if not FlaskForm().validate_on_submit():
        abort(400)
    cert = _own(serial)
    try:
        services.revoke(village_id(), cert.serial, request.form.get("reason", ""), current_user.id)
    except DomainError as e:
        flash(str(e), "error")
    else:
        flash(_("Certificate revoked."), "ok")
    return redirect(url_for("certificates.show", serial=cert.serial))


@bp.route("/v/<code>/certificates/<serial>")
def verify(code: str, serial: str):
    """Public, no login: the certificate's own figures and whether it is genuine, current or
    revoked; nothing beyond what the certificate says."""
    village = db.session.scalar(select(Village).where(Village.code == code[:40]))
    limit = throttle.Limit(f"certaddr:{request.remote_addr or '?'}", UNKNOWN_PER_HOUR, 60)
    refused = throttle.reserve([limit])
    if refused is not None:
        return render_template(
            "errors/error.html",
            code=429,
            message=_(
                "Too many certificates that do not exist were looked up from this address. "
                "Try again in %(n)s minutes.",
                n=refused.minutes,
            ),
        ), 429
    serial = services.normalise_serial(serial)
    verdict = services.verify(village, serial) if village else services.Verdict(None, False, False)
    if verdict.certificate is not None:
        throttle.refund([limit])  # only lookups of unknown serials use up the budget
    resp = render_template(
        "certificates/verify.html", village=village, serial=serial, verdict=verdict
    )
    return resp, 404 if verdict.certificate is None else 200
