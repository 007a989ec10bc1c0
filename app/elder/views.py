from flask import Blueprint, redirect, request, url_for
from flask_login import current_user

from ..auth.access import roles_required
from ..security import safe_next
from . import services

bp = Blueprint("elder", __name__)


@bp.route("/me/elder", methods=["POST"])
@roles_required("villager")
def switch():
    """The 长辈版 switch in every villager page's header, and the answer to its first offer: a
    plain form post (no script), back to the page it came from."""
    services.set_elder_mode(current_user.id, request.form.get("on") == "1")
    return redirect(safe_next(request.form.get("next")) or url_for("ledger.me"))
