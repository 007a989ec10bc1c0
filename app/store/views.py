"""Pages of the rewards store: the counter, /q/<token>, the pay code, venues, items, stock,
gifts and household cards. Views are thin: services keep the rules."""

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from wtforms import SelectChoice

from ..auth.access import get_scoped_or_404, roles_required, scoped, village_id
from ..auth.models import User
from ..database import utcnow
from ..errors import DomainError
from ..extensions import db
from ..households.models import Household, Resident
from ..scoring import photos
from ..security import safe_next
from ..villages.models import Village
from . import codes, qr, services
from .forms import ClerkForm, CorrectionForm, GiftForm, IntakeForm, ItemForm, PinForm, VenueForm
from .models import Item, PayCode, Redemption, StockMove, Venue
from .rules import local_day

bp = Blueprint("store", __name__)


def base_url() -> str:
    """What a QR code's URL starts with: PUBLIC_BASE_URL when set (behind a proxy), else the
    address this request came to."""
    return (current_app.config.get("PUBLIC_BASE_URL") or request.host_url).rstrip("/")


def qr_url(token: str) -> str:
    return base_url() + url_for("store.q", token=token)


# ---------------------------------------------------------------- counter


@bp.route("/counter")
@roles_required("clerk", "village_admin")
def counter():
    venue = db.session.get(Venue, current_user.venue_id) if current_user.venue_id else None
    code = (request.args.get("code") or "")[: codes.MAX_CODE]
    return render_template("store/counter.html", venue=venue, code=code)


@bp.route("/counter/today")
@roles_required("clerk", "village_admin")
def today():
    if current_user.venue_id is None:
        return redirect(url_for("store.counter"))
    rows = db.session.scalars(
        scoped(Redemption)
        .where(
            Redemption.venue_id == current_user.venue_id,
            Redemption.day == local_day(utcnow()),
        )
        .options(selectinload(Redemption.lines), selectinload(Redemption.household))
        .order_by(Redemption.id.desc())
        .limit(300)
    ).all()
    return render_template("store/today.html", rows=rows, form=FlaskForm())


@bp.route("/counter/redemptions/<int:redemption_id>/void", methods=["POST"])
@roles_required("clerk", "village_admin")
def void(redemption_id: int):
    if not FlaskForm().validate_on_submit():
        abort(400)
    try:
        services.void(
            village_id(),
            redemption_id,
            current_user.id,
            admin=current_user.role == "village_admin",
            venue_id=current_user.venue_id,
            reason=(request.form.get("reason") or "")[:200],
        )
    except DomainError as e:
        flash(str(e), "error")
    else:
        flash(
            _("Redemption %(id)s voided; the points and the stock are back.", id=redemption_id),
            "ok",
        )
    return redirect(_back(url_for("store.today")))


def _back(default: str) -> str:
    return safe_next(request.form.get("next")) or default


# ---------------------------------------------------------------- QR landing and pay code


@bp.route("/q/<token>")
def q(token: str):
    """A clerk lands on the counter with this code, the owner on their own page, anyone else
    on a neutral page that shows nothing personal."""
    if not current_user.is_authenticated or current_user.village_id is None:
        return _neutral()
    if current_user.role in ("clerk", "village_admin") and current_user.venue_id:
        return redirect(url_for("store.counter", code=token))
    if current_user.role == "villager" and _is_owner(token):
        return redirect(url_for("ledger.me"))
    return _neutral()


def _neutral():
    return render_template("store/q.html")


def _is_owner(token: str) -> bool:
    resident = db.session.get(Resident, current_user.resident_id or 0)
    if resident is None:
        return False
    try:
        code = codes.parse(token)
    except codes.Unknown:
        return False
    if code.kind == "card":
        return resident.household.public_id == code.household_public_id
    pay = db.session.scalar(select(PayCode).where(PayCode.number == code.number))
    other = db.session.get(Resident, pay.resident_id) if pay else None
    return other is not None and other.household_id == resident.household_id


def _own_resident() -> Resident:
    resident = db.session.get(Resident, current_user.resident_id or 0)
    if resident is None or resident.village_id != current_user.village_id:
        abort(403)
    return resident


def _pay_code(resident: Resident) -> dict:
    """A fresh code for the phone: issued and stored by the server, accepted for about 60 s."""
    code = services.issue_pay_code(resident.village_id, resident.id)
    age = (utcnow() - code.issued_at).total_seconds()
    return {
        "svg": str(qr.svg(qr_url(codes.pay_token(code.number)), _("Pay code"))),
        "number": codes.grouped(code.number),
        "refresh_in": round(max(1.0, codes.REFRESH_SECONDS - age), 1),
    }


@bp.route("/me/code")
@roles_required("villager")
def paycode():
    resident = _own_resident()
    resp = current_app.make_response(
        render_template("store/paycode.html", resident=resident, code=_pay_code(resident))
    )
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.route("/me/code.json")
@roles_required("villager")
def paycode_json():
    resp = current_app.json.response(_pay_code(_own_resident()))
    resp.headers["Cache-Control"] = "no-store"
    return resp


# ---------------------------------------------------------------- venues, items, stock, gifts


def _venue_for_staff(venue_id: int) -> Venue:
    """Admins see every venue of the village; a clerk only the own one."""
    venue = get_scoped_or_404(Venue, venue_id)
    if current_user.role == "clerk" and current_user.venue_id != venue.id:
        abort(403)
    return venue


@bp.route("/counter/stock")
@roles_required("clerk", "village_admin")
def my_venue():
    if current_user.venue_id is None:
        return redirect(url_for("store.counter"))
    return redirect(url_for("store.venue", venue_id=current_user.venue_id))


@bp.route("/admin/store", methods=["GET", "POST"])
@roles_required("village_admin")
def venues():
    form = VenueForm()
    if form.validate_on_submit():
        try:
            venue = services.save_venue(
                village_id(),
                None,
                kind=form.kind.data,
                name=form.name.data,
                hours=form.hours.data,
                actor_id=current_user.id,
            )
        except DomainError as e:
            form.name.errors.append(str(e))
        else:
            flash(_("Venue saved."), "ok")
            return redirect(url_for("store.venue", venue_id=venue.id))
    rows = db.session.scalars(scoped(Venue).order_by(Venue.id)).all()
    return render_template("store/venues.html", venues=rows, form=form), 422 if form.errors else 200


@bp.route("/admin/store/venues/<int:venue_id>")
@roles_required("village_admin", "clerk")
def venue(venue_id: int):
    venue = _venue_for_staff(venue_id)
    items = db.session.scalars(
        select(Item).where(Item.venue_id == venue.id).order_by(Item.active.desc(), Item.id)
    ).all()
    moves = db.session.scalars(
        select(StockMove)
        .join(Item, Item.id == StockMove.item_id)
        .where(Item.venue_id == venue.id)
        .options(selectinload(StockMove.item), selectinload(StockMove.user))
        .order_by(StockMove.id.desc())
        .limit(30)
    ).all()
    recent = db.session.scalars(
        select(Redemption)
        .where(Redemption.venue_id == venue.id)
        .options(selectinload(Redemption.lines), selectinload(Redemption.household))
        .order_by(Redemption.id.desc())
        .limit(30)
    ).all()
    clerks = db.session.scalars(scoped(User).where(User.venue_id == venue.id)).all()
    clerk_form = ClerkForm()
    clerk_form.user_id.choices = [
        SelectChoice(u.id, f"{u.username} {u.display_name}")
        for u in db.session.scalars(
            scoped(User)
            .where(User.role == "clerk", User.is_enabled.is_(True))
            .order_by(User.username)
        )
    ]
    village = db.session.get(Village, village_id())
    return render_template(
        "store/venue.html",
        venue=venue,
        items=items,
        moves=moves,
        recent=recent,
        clerks=clerks,
        clerk_form=clerk_form,
        intake_form=IntakeForm(prefix="in"),
        correction_form=CorrectionForm(prefix="co"),
        gift_form=GiftForm(prefix="gift"),
        venue_form=VenueForm(obj=venue, prefix="v"),
        gifts=village.gifts_earn_points,
        form=FlaskForm(),
        today=local_day(utcnow()),
    )


@bp.route("/admin/store/venues/<int:venue_id>/edit", methods=["POST"])
@roles_required("village_admin")
def venue_edit(venue_id: int):
    venue = _venue_for_staff(venue_id)
    form = VenueForm(prefix="v")
    if not form.validate_on_submit():
        flash(_("Check the venue's name and kind."), "error")
    else:
        try:
            services.save_venue(
                village_id(),
                venue.id,
                kind=form.kind.data,
                name=form.name.data,
                hours=form.hours.data,
                actor_id=current_user.id,
            )
            flash(_("Venue saved."), "ok")
        except DomainError as e:
            flash(str(e), "error")
    return redirect(url_for("store.venue", venue_id=venue.id))


@bp.route("/admin/store/venues/<int:venue_id>/items/new", methods=["GET", "POST"])
@bp.route("/admin/store/items/<int:item_id>/edit", methods=["GET", "POST"])
@roles_required("village_admin")
def item_form(venue_id: int | None = None, item_id: int | None = None):
    item = get_scoped_or_404(Item, item_id) if item_id else None
    venue = _venue_for_staff(item.venue_id if item else venue_id)
    form = ItemForm(obj=item)
    if request.method == "GET" and item is not None:
        form.slot.data = item.slot or ""
    if form.validate_on_submit():
        data = services.ItemData(
            name=form.name.data,
            points=form.points.data,
            unit=form.unit.data or "",
            active=form.active.data,
            stock=form.stock.data if item is None else None,
            low_stock=form.low_stock.data or 0,
            slot=form.slot.data or None,
            daily_limit=form.daily_limit.data,
            photo=_upload(form.photo.data),
        )
        try:
            services.save_item(village_id(), venue.id, item_id, data, current_user.id)
        except DomainError as e:
            form.name.errors.append(str(e))
        else:
            flash(_("Item saved."), "ok")
            return redirect(url_for("store.venue", venue_id=venue.id))
    status = 422 if form.errors else 200
    return render_template("store/item_form.html", form=form, item=item, venue=venue), status


def _upload(upload) -> bytes | None:
    if upload is None or not getattr(upload, "filename", ""):
        return None
    return upload.read()


@bp.route("/store/items/<int:item_id>/photo")
@roles_required("village_admin", "clerk", "scorer", "villager")
def item_photo(item_id: int):
    item = get_scoped_or_404(Item, item_id)
    # Pages link it with ?v=<photo id>: a new upload is a new address, so that one is kept.
    version = request.args.get("v", type=int)
    return photos.serve(item.village_id, item.photo_id, immutable=version == item.photo_id)


@bp.route("/admin/store/venues/<int:venue_id>/stock", methods=["POST"])
@roles_required("village_admin", "clerk")
def stock(venue_id: int):
    venue = _venue_for_staff(venue_id)
    item = get_scoped_or_404(Item, request.form.get("item_id", type=int) or 0)
    if item.venue_id != venue.id:
        abort(404)
    correcting = request.form.get("action") == "correct"
    form = CorrectionForm(prefix="co") if correcting else IntakeForm(prefix="in")
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for e in errors:
                flash(str(e), "error")
        return redirect(url_for("store.venue", venue_id=venue.id))
    try:
        if correcting:
            services.correct_stock(
                village_id(), item.id, form.counted.data, form.reason.data, current_user.id
            )
        else:
            services.take_in(
                village_id(),
                item.id,
                form.qty.data,
                current_user.id,
                donor=form.donor.data or "",
                reason=form.reason.data or "",
            )
    except DomainError as e:
        flash(str(e), "error")
    else:
        flash(_("Stock of %(name)s recorded.", name=item.name), "ok")
    return redirect(url_for("store.venue", venue_id=venue.id))


@bp.route("/admin/store/venues/<int:venue_id>/gift", methods=["POST"])
@roles_required("village_admin", "clerk")
def gift(venue_id: int):
    venue = _venue_for_staff(venue_id)
    form = GiftForm(prefix="gift")
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for e in errors:
                flash(str(e), "error")
        return redirect(url_for("store.venue", venue_id=venue.id))
    household = db.session.scalar(
        scoped(Household).where(Household.number == form.household.data.strip())
    )
    if household is None:
        flash(_("No household with the number %(n)s.", n=form.household.data), "error")
        return redirect(url_for("store.venue", venue_id=venue.id))
    try:
        services.record_gift(
            village_id(),
            venue.id,
            household.id,
            form.description.data,
            form.points.data,
            current_user.id,
        )
    except DomainError as e:
        flash(str(e), "error")
    else:
        flash(
            _(
                "%(points)s points credited to household %(n)s.",
                points=form.points.data,
                n=household.number,
            ),
            "ok",
        )
    return redirect(url_for("store.venue", venue_id=venue.id))


@bp.route("/admin/store/venues/<int:venue_id>/clerks", methods=["POST"])
@roles_required("village_admin")
def clerks(venue_id: int):
    venue = _venue_for_staff(venue_id)
    form = FlaskForm()
    if not form.validate_on_submit():
        abort(400)
    user_id = request.form.get("user_id", type=int)
    unbind = request.form.get("action") == "unbind"
    try:
        services.assign_clerk(
            village_id(), user_id or 0, None if unbind else venue.id, current_user.id
        )
    except DomainError as e:
        flash(str(e), "error")
    else:
        flash(_("Clerk saved."), "ok")
    return redirect(url_for("store.venue", venue_id=venue.id))


PAGE = 50


@bp.route("/admin/store/redemptions")
@roles_required("village_admin")
def redemptions():
    """Every redemption of the village, newest first (keyset pages), by venue or household
    number: where an admin finds an old one to void."""
    venue_id = request.args.get("venue", type=int)
    number = (request.args.get("household") or "").strip()[:20]
    before = request.args.get("before", type=int)
    query = scoped(Redemption).options(
        selectinload(Redemption.lines),
        selectinload(Redemption.household),
        selectinload(Redemption.resident),
        selectinload(Redemption.venue),
    )
    if venue_id:
        query = query.where(Redemption.venue_id == venue_id)
    if number:
        query = query.join(Household, Household.id == Redemption.household_id).where(
            Household.number == number
        )
    if before:
        query = query.where(Redemption.id < before)
    rows = db.session.scalars(query.order_by(Redemption.id.desc()).limit(PAGE + 1)).all()
    older = rows[PAGE - 1].id if len(rows) > PAGE else None
    venues = db.session.scalars(scoped(Venue).order_by(Venue.id)).all()
    return render_template(
        "store/redemptions.html",
        rows=rows[:PAGE],
        older=older,
        venues=venues,
        venue_id=venue_id,
        number=number,
        form=FlaskForm(),
    )


# ---------------------------------------------------------------- household cards


@bp.route("/admin/cards")
@roles_required("village_admin")
def cards():
    group = (request.args.get("group") or "").strip()[:50]
    query = scoped(Household).where(Household.status == "active")
    if group:
        query = query.where(Household.group_name == group)
    households = db.session.scalars(query.order_by(Household.number).limit(2000)).all()
    groups = db.session.scalars(
        select(Household.group_name)
        .where(Household.village_id == village_id())
        .distinct()
        .order_by(Household.group_name)
    ).all()
    return render_template(
        "store/cards.html",
        cards=[_card(h) for h in households],
        groups=[g for g in groups if g],
        group=group,
    )


def _card(h: Household) -> dict:
    return {
        "household": h,
        "svg": qr.svg(qr_url(codes.card_token(h.public_id, h.card_version)), h.number),
    }


@bp.route("/admin/cards/<int:household_id>")
@roles_required("village_admin")
def card(household_id: int):
    household = get_scoped_or_404(Household, household_id)
    village = db.session.get(Village, village_id())
    return render_template(
        "store/card.html",
        card=_card(household),
        household=household,
        pin_form=PinForm(),
        form=FlaskForm(),
        pin_required=village.card_pin_required,
    )


@bp.route("/admin/cards/<int:household_id>/reissue", methods=["POST"])
@roles_required("village_admin")
def card_reissue(household_id: int):
    household = get_scoped_or_404(Household, household_id)
    if not FlaskForm().validate_on_submit():
        abort(400)
    version = services.reissue_card(village_id(), household.id, current_user.id)
    flash(_("New card issued (version %(v)s). Older cards no longer work.", v=version), "ok")
    return redirect(url_for("store.card", household_id=household.id))


@bp.route("/admin/cards/<int:household_id>/pin", methods=["POST"])
@roles_required("village_admin")
def card_pin(household_id: int):
    household = get_scoped_or_404(Household, household_id)
    form = PinForm()
    if not form.validate_on_submit():
        for e in form.pin.errors:
            flash(str(e), "error")
        return redirect(url_for("store.card", household_id=household.id))
    services.set_card_pin(village_id(), household.id, form.pin.data or None, current_user.id)
    flash(_("Card PIN set.") if form.pin.data else _("Card PIN removed."), "ok")
    return redirect(url_for("store.card", household_id=household.id))
