"""The counter's JSON API (/api/v1/counter/...). The counter page uses it, and so can a handheld
terminal or a WeChat mini-program: session cookie plus the `X-CSRFToken` header on every POST.
Errors are `{error, message}` with the status the OpenAPI document gives."""

from functools import wraps

from flask import Blueprint, current_app, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from ..auth import sessions
from ..errors import Forbidden, InvalidInput
from ..extensions import csrf, db
from ..ledger.queries import stars
from ..villages.models import Village
from . import qr, services
from .errors import NoVenue
from .models import Item
from .openapi import document

bp = Blueprint("store_api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)  # checked in `counter_api`, after the sign-in check

COUNTER_ROLES = ("clerk", "village_admin")


def _unauthorized():
    return {"error": "unauthorized", "message": _("Please sign in.")}, 401


def counter_api(view=None, *, venue_required: bool = True):
    """Signed in as a clerk (or an admin) of a village; with a venue unless told otherwise.
    The view reads who is asking from `me()`."""

    def decorator(fn):
        @wraps(fn)
        def wrapped(*args, **kwargs):
            who = sessions.who()
            if who is None:
                return _unauthorized()
            if request.method == "POST" and current_app.config.get("WTF_CSRF_ENABLED", True):
                # After the sign-in check, so a signed-out client learns 401 first.
                csrf.protect()
            if who.role not in COUNTER_ROLES or who.village_id is None:
                raise Forbidden()
            if venue_required and who.venue_id is None:
                raise NoVenue()
            return fn(*args, **kwargs)

        return wrapped

    return decorator(view) if view else decorator


def me() -> sessions.Who:
    """The clerk (or admin) asking, as `counter_api` found them."""
    return sessions.who()


def _body(*fields: str, required: bool = True) -> dict:
    """The JSON object sent, with only `fields` in it (an unknown field is a client's mistake,
    refused as the OpenAPI document says)."""
    data = request.get_json(silent=True)
    if data is None and not required and not request.get_data():
        return {}
    if not isinstance(data, dict):
        raise InvalidInput(_l("Send a JSON object with Content-Type: application/json."))
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise InvalidInput(_l("Unknown field: %(name)s."), name=unknown[0][:40])
    return data


def item_json(item: Item) -> dict:
    return {
        "id": item.id,
        "name": item.name,
        "points": item.points,
        "stock": item.stock,
        "slot": item.slot,
        "unit": item.unit,
        "low": item.is_low,
    }


def scan_json(scan: services.Scan, items: list[Item]) -> dict:
    from .rules import local_day, meal_price

    h = scan.household
    village = db.session.get(Village, h.village_id)
    year = local_day(services.utcnow()).year
    meals = [i for i in items if i.is_meal]

    def person(r):
        if r is None:
            return None
        return {
            "id": r.id,
            "name": r.name,
            "prices": {
                str(i.id): meal_price(i.points, r.birth_year, village.meal_age_tiers, year)
                for i in meals
            },
        }

    return {
        "household": {
            "public_id": h.public_id,
            "number": h.number,
            "head": h.head_name,
            "balance": h.balance,
            "stars": stars(h),
        },
        "resident": person(scan.resident),
        "residents": [person(r) for r in (scan.residents if scan.resident is None else [])],
        "source": scan.source,
        "pin_required": scan.pin_required,
        "code": scan.token,
    }


def redemption_json(r: services.Receipt) -> dict:
    return {
        "id": r.id,
        "total": r.total,
        "balance_after": r.balance_after,
        "lines": [
            {
                "item_id": line.item_id,
                "name": line.name,
                "qty": line.qty,
                "points": line.points,
                "subtotal": line.points * line.qty,
            }
            for line in r.lines
        ],
        "household": {
            "public_id": r.household_public_id,
            "number": r.household_number,
            "head": r.household_head,
        },
        "resident": {"id": r.resident_id, "name": r.resident_name},
        "venue": r.venue,
        "source": r.source,
        "request_id": r.request_id,
        "created_at": r.created_at.isoformat() + "Z",
        "voided": r.voided,
    }


def _venue_items() -> list[Item]:
    return list(
        db.session.scalars(
            select(Item)
            .where(Item.venue_id == me().venue_id, Item.active.is_(True))
            .order_by(Item.slot.is_not(None), Item.id)
        )
    )


@bp.get("/counter/items")
@counter_api
def items():
    return {"items": [item_json(i) for i in _venue_items()]}


@bp.post("/counter/lookup")
@counter_api
def lookup():
    code = _body("code").get("code")
    if not isinstance(code, str) or not code.strip():
        raise InvalidInput(_l("code is required: the scanned text, URL or number."))
    clerk = me()
    scan = services.lookup(clerk.village_id, clerk.venue_id, clerk.id, code)
    return scan_json(scan, _venue_items())


@bp.post("/counter/redemptions")
@counter_api
def create_redemption():
    data = _body("code", "lines", "request_id", "resident_id", "pin")
    code = data.get("code")
    if not isinstance(code, str) or not code.strip():
        raise InvalidInput(_l("code is required: the scanned text, URL or number."))
    pin = data.get("pin")
    if pin is not None and not isinstance(pin, str):
        raise InvalidInput(_l("The PIN is 4 digits."))
    clerk = me()
    redemption, created = services.redeem(
        clerk.village_id,
        clerk.venue_id,
        clerk.id,
        code,
        data.get("lines"),
        data.get("request_id"),
        pin=pin or None,
        resident_id=data.get("resident_id"),
    )
    headers = {} if created else {"Idempotent-Replayed": "true"}
    return redemption_json(redemption), 201, headers


@bp.post("/counter/redemptions/<int:redemption_id>/void")
@counter_api(venue_required=False)
def void_redemption(redemption_id: int):
    reason = _body("reason", required=False).get("reason", "")
    if not isinstance(reason, str):
        raise InvalidInput(_l("reason must be a text."))
    clerk = me()
    admin = clerk.role == "village_admin"
    if not admin and clerk.venue_id is None:
        raise NoVenue()
    voided = services.void(
        clerk.village_id,
        redemption_id,
        clerk.id,
        admin=admin,
        venue_id=clerk.venue_id,
        reason=reason,
    )
    body = redemption_json(voided.receipt)
    body["reversal"] = {
        "entry_id": voided.entry_id,
        "points": voided.receipt.total,
        "balance_after": voided.balance_after,
    }
    return body


@bp.post("/counter/decode")
@counter_api
def decode():
    photo = request.files.get("photo")
    if photo is None:
        raise InvalidInput(_l("Send the photo as the multipart field 'photo'."))
    try:
        texts = qr.decode(photo.read(current_app.config["MAX_CONTENT_LENGTH"]))
    except ValueError:
        raise InvalidInput(_l("The file is not a photo.")) from None
    if not texts:
        raise InvalidInput(_l("No QR code found in the photo. Take it closer, in good light."))
    return {"code": texts[0]}


@bp.get("/openapi.json")
def openapi():
    return document(request.host_url.rstrip("/"))
