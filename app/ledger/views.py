from flask import Blueprint, abort, render_template, request
from flask_login import current_user

from ..auth.access import roles_required
from ..extensions import db
from ..households.models import Resident
from ..messages.queries import unread_count
from ..scoring.queries import items_for_entries, my_objections, under_notice_for
from .queries import entries_page, standing

bp = Blueprint("ledger", __name__)


@bp.route("/me")
@roles_required("villager")
def me():
    resident = (
        db.session.get(Resident, current_user.resident_id) if current_user.resident_id else None
    )
    if resident is None or resident.village_id != current_user.village_id:
        abort(403)
    household = resident.household
    entries, older = entries_page(household.id, request.args.get("before", type=int))
    first_page = not request.args.get("before")
    notice = under_notice_for(household.id) if first_page else []
    return render_template(
        "me/index.html",
        notice=notice,
        unread=unread_count(current_user) if first_page else 0,
        objected=my_objections(current_user.id, [i.id for i in notice]),
        resident=resident,
        household=household,
        entries=entries,
        older=older,
        first_page=first_page,
        why=items_for_entries([e.id for e in entries]),
        standing=standing(household) if first_page else None,
    )
