"""The offline counter's pages: its service worker and web app manifest (served under /counter
so their scope covers the counter page), and the admin's lists of offline overdrafts and
conflicts."""

import hashlib
import json

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf import FlaskForm

from ..auth.access import roles_required, village_id
from ..errors import DomainError
from . import services

bp = Blueprint("offline", __name__)

# What the counter page loads from /static; the service worker keeps them (under the hashed
# names the page uses) with the page itself. Anything else the page fetches from /static is
# kept the first time it is fetched.
COUNTER_STATIC = (
    "app.css",
    "offline.css",
    "page-tools.js",
    "store-counter.js",
    "offline.js",
    "icon-192.png",
    "icon-512.png",
    "vendor/jsqr/jsQR.js",  # the camera's decoder where BarcodeDetector is missing
)
SCOPE = "/counter"


@bp.route("/counter/sw.js")
def service_worker():
    urls = [url_for("store.counter")] + [
        url_for("static", filename=name) for name in COUNTER_STATIC
    ]
    # The cache's name changes with what it holds: a new release replaces the old cache.
    version = hashlib.sha256("\n".join(urls).encode()).hexdigest()[:12]
    body = render_template("offline/sw.js", urls=urls, version=version, scope=SCOPE)
    resp = Response(body, mimetype="text/javascript")
    resp.headers["Cache-Control"] = "no-cache"
    # The script lives at /counter/sw.js; its default scope /counter/ would miss /counter.
    resp.headers["Service-Worker-Allowed"] = SCOPE
    return resp


@bp.route("/counter/manifest.webmanifest")
def manifest():
    body = {
        "name": _("Village Points counter"),
        "short_name": _("Counter"),
        "start_url": url_for("store.counter"),
        "scope": SCOPE,
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": "#b71c1c",
        "icons": [
            {
                "src": url_for("static", filename=f"icon-{size}.png"),
                "sizes": f"{size}x{size}",
                "type": "image/png",
            }
            for size in (192, 512)
        ],
    }
    resp = Response(json.dumps(body, ensure_ascii=False), mimetype="application/manifest+json")
    resp.headers["Cache-Control"] = "no-cache"
    return resp


@bp.route("/admin/offline")
@roles_required("village_admin")
def index():
    vid = village_id()
    return render_template(
        "offline/index.html",
        overdrafts=services.overdrafts(vid),
        conflicts=services.conflicts(vid),
        reasons=services.conflict_reasons(),
        form=FlaskForm(),
    )


@bp.route("/admin/offline/conflicts/<int:conflict_id>", methods=["POST"])
@roles_required("village_admin")
def resolve(conflict_id: int):
    form = FlaskForm()
    if not form.validate_on_submit():
        flash(_("The form has expired or is incomplete. Please try again."), "error")
        return redirect(url_for("offline.index"))
    accept = request.form.get("decision") == "accept"
    try:
        services.resolve_conflict(
            village_id(),
            conflict_id,
            accept,
            (request.form.get("note") or "")[:200],
            current_user.id,
        )
    except DomainError as e:
        flash(str(e), "error")
    else:
        flash(_("Accepted: the redemption is posted.") if accept else _("Dismissed."), "ok")
    return redirect(url_for("offline.index"))
