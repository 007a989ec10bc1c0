"""The offline counter's JSON API: the venue's offline list and the sync of what the counter
recorded while the network was down. Same sign-in and CSRF rules as /api/v1/counter/*."""

from flask import Blueprint
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import generate_csrf

from ..errors import InvalidInput
from ..extensions import csrf
from ..store.api import _body, counter_api, me, redemption_json
from . import services

bp = Blueprint("offline_api", __name__, url_prefix="/api/v1/counter/offline")
csrf.exempt(bp)  # checked in `counter_api`, after the sign-in check


@bp.get("")
@counter_api
def offline_list():
    clerk = me()
    body = services.offline_list(clerk.village_id, clerk.venue_id)
    # A page opened from the service worker's cache may hold an old token: the sync uses this.
    body["csrf"] = generate_csrf()
    return body, 200, {"Cache-Control": "no-store"}


def synced_json(s: services.Synced) -> dict:
    return {
        "status": s.status,
        "receipt_no": s.receipt_no,
        "occurred_at": s.occurred_at.isoformat() + "Z",
        "synced_at": s.synced_at.isoformat() + "Z",
        "overdraft": s.overdraft,
        "redemption": redemption_json(s.receipt) if s.receipt else None,
        "conflict": {"id": s.conflict.id, "reason": s.conflict.reason} if s.conflict else None,
    }


@bp.post("/redemptions")
@counter_api
def sync():
    data = _body("code", "lines", "request_id", "resident_id", "receipt_no", "occurred_at", "list")
    if not isinstance(data.get("code"), str):
        raise InvalidInput(_l("code is required: the scanned text, URL or number."))
    clerk = me()
    synced, created = services.sync(
        clerk.village_id,
        clerk.venue_id,
        clerk.id,
        code=data.get("code"),
        lines=data.get("lines"),
        request_id=data.get("request_id"),
        resident_id=data.get("resident_id"),
        receipt_no=data.get("receipt_no"),
        occurred_at=data.get("occurred_at"),
        list_token=data.get("list"),
    )
    headers = {} if created else {"Idempotent-Replayed": "true"}
    return synced_json(synced), 201 if created else 200, headers
