from flask import Blueprint, render_template
from flask_login import current_user

from ..auth.access import roles_required
from . import queries, services

bp = Blueprint("messages", __name__)


@bp.route("/me/messages")
@roles_required("villager")
def index():
    found = queries.messages(current_user)
    services.mark_seen(current_user.id)
    return render_template("messages/index.html", messages=found)
