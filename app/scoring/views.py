"""Scoring pages. Views are thin: they parse forms, call one service and render."""

from datetime import timedelta

from flask import (
    Blueprint,
    abort,
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
from wtforms import SelectChoice

from ..auth.access import get_scoped_or_404, roles_required, village_id
from ..database import utcnow
from ..errors import DomainError
from ..extensions import db
from ..households.models import Household, Resident
from ..ledger.chain import head_is_in_chain, parse_head
from ..pagination import Page
from ..villages.models import Village
from . import photos, queries, services
from .forms import (
    AdjustForm,
    BatchProposalForm,
    ClaimForm,
    DecisionForm,
    MeetingForm,
    NewMeetingForm,
    ObjectionForm,
    ProposalForm,
    ResolveForm,
    RuleForm,
    choices,
)
from .models import Decision, Meeting, NoticeItem, Objection, Proposal, Rule
from .rules import CAP_PERIODS, CATEGORIES, OUTCOMES, local_today

bp = Blueprint("scoring", __name__)

STAFF = ("village_admin", "scorer")


@bp.app_context_processor
def labels():
    return {
        "category_labels": CATEGORIES,
        "cap_labels": CAP_PERIODS,
        "outcome_labels": OUTCOMES,
    }


def _page_status(form) -> int:
    return 422 if form.errors or getattr(form, "form_errors", None) else 200


def _rule_choices(village: int, *, awards_only: bool = False) -> list:
    q = select(Rule).where(Rule.village_id == village, Rule.active.is_(True))
    if awards_only:
        q = q.where(Rule.points > 0)
    rules = db.session.scalars(q.order_by(Rule.category, Rule.id)).all()
    return [
        SelectChoice(r.id, f"{r.title} ({r.points:+d})", optgroup=str(CATEGORIES[r.category]))
        for r in rules
    ]


def _photo_bytes(form) -> bytes | None:
    upload = form.photo.data
    if upload is None or not getattr(upload, "filename", ""):
        return None
    return upload.read()


# --- hub and rules -----------------------------------------------------------------------------


@bp.route("/scoring/")
@roles_required(*STAFF)
def index():
    vid = village_id()
    open_meetings = db.session.scalars(
        select(Meeting)
        .where(Meeting.village_id == vid, Meeting.status == "open")
        .order_by(Meeting.held_on)
        .limit(5)
    ).all()
    open_objections = db.session.scalar(
        select(db.func.count(Objection.id)).where(
            Objection.village_id == vid, Objection.status == "open"
        )
    )
    village = db.session.get(Village, vid)
    return render_template(
        "scoring/index.html",
        waiting=queries.waiting_count(vid),
        open_meetings=open_meetings,
        open_objections=open_objections,
        village=village,
    )


@bp.route("/scoring/rules")
@roles_required(*STAFF)
def rules():
    q = select(Rule).where(Rule.village_id == village_id())
    if request.args.get("all") != "1":
        q = q.where(Rule.active.is_(True))
    page = Page.of(q.order_by(Rule.category, Rule.id), request.args.get("page"))
    return render_template("scoring/rules.html", page=page, show_all=request.args.get("all"))


@bp.route("/scoring/rules/new", methods=["GET", "POST"], defaults={"rule_id": None})
@bp.route("/scoring/rules/<int:rule_id>", methods=["GET", "POST"])
@roles_required("village_admin")
def rule_form(rule_id: int | None):
    rule = get_scoped_or_404(Rule, rule_id) if rule_id else None
    form = RuleForm(obj=rule)
    if request.method == "GET" and rule is not None:
        form.cap_period.data = rule.cap_period or ""
    if form.validate_on_submit():
        try:
            services.save_rule(
                village_id(),
                services.RuleData(
                    category=form.category.data,
                    title=form.title.data,
                    points=form.points.data,
                    cap_count=form.cap_count.data,
                    cap_period=form.cap_period.data or None,
                    active=form.active.data,
                ),
                current_user.id,
                rule_id,
            )
        except DomainError as e:
            form.form_errors.append(str(e))
        else:
            flash(_("Rule saved."), "ok")
            return redirect(url_for("scoring.rules"))
    return render_template("scoring/rule_form.html", form=form, rule=rule), _page_status(form)


# --- proposals ---------------------------------------------------------------------------------


@bp.route("/scoring/proposals")
@roles_required(*STAFF)
def proposals():
    status = request.args.get("status", "waiting")
    page = Page.of(queries.proposals(village_id(), status), request.args.get("page"))
    return render_template("scoring/proposals.html", page=page, status=status)


@bp.route("/scoring/proposals/new", methods=["GET", "POST"])
@roles_required(*STAFF)
def proposal_new():
    vid = village_id()
    household_id = request.args.get("household", type=int)
    if household_id is None:
        q = (request.args.get("q") or "").strip()[:50]
        found = queries.search_households(vid, q) if q else []
        return render_template("scoring/pick_household.html", q=q, found=found)
    household = get_scoped_or_404(Household, household_id)
    form = ProposalForm()
    form.rule_id.choices = _rule_choices(vid)
    form.resident_id.choices = choices(
        [(0, _("— the household —"))]
        + [(r.id, r.name) for r in household.residents if r.status == "active"]
    )
    if request.method == "GET":
        form.occurred_on.data = local_today(utcnow())
    if form.validate_on_submit():
        try:
            proposal = services.create_proposal(
                vid,
                household_ids=[household.id],
                rule_id=form.rule_id.data,
                occurred_on=form.occurred_on.data,
                note=form.note.data,
                photo=_photo_bytes(form),
                resident_id=form.resident_id.data or None,
                actor_id=current_user.id,
            )
        except DomainError as e:
            form.form_errors.append(str(e))
        else:
            flash(_("Proposal recorded for the next meeting."), "ok")
            return redirect(url_for("scoring.proposal", proposal_id=proposal.id))
    return render_template(
        "scoring/proposal_form.html", form=form, household=household
    ), _page_status(form)


@bp.route("/scoring/proposals/batch", methods=["GET", "POST"])
@roles_required(*STAFF)
def proposal_batch():
    vid = village_id()
    group = (request.args.get("group") or "").strip()[:50]
    households = queries.households_for_batch(vid, group)
    form = BatchProposalForm()
    form.rule_id.choices = _rule_choices(vid)
    form.household_ids.choices = choices((h.id, f"{h.number} {h.head_name}") for h in households)
    if request.method == "GET":
        form.occurred_on.data = local_today(utcnow())
    if form.validate_on_submit():
        try:
            proposal = services.create_proposal(
                vid,
                household_ids=form.household_ids.data,
                rule_id=form.rule_id.data,
                occurred_on=form.occurred_on.data,
                note=form.note.data,
                photo=_photo_bytes(form),
                actor_id=current_user.id,
            )
        except DomainError as e:
            form.form_errors.append(str(e))
        else:
            flash(_("Proposal recorded for %(n)s households.", n=len(proposal.households)), "ok")
            return redirect(url_for("scoring.proposal", proposal_id=proposal.id))
    return render_template(
        "scoring/batch_form.html",
        form=form,
        households=households,
        group=group,
        groups=queries.groups(vid),
    ), _page_status(form)


@bp.route("/scoring/proposals/<int:proposal_id>")
@roles_required(*STAFF)
def proposal(proposal_id: int):
    p = get_scoped_or_404(Proposal, proposal_id)
    decisions = db.session.scalars(
        select(Decision).where(Decision.proposal_id == p.id).order_by(Decision.id)
    ).all()
    return render_template("scoring/proposal.html", p=p, decisions=decisions)


@bp.route("/scoring/proposals/<int:proposal_id>/photo")
@roles_required("village_admin", "scorer", "villager")
def photo(proposal_id: int):
    p = get_scoped_or_404(Proposal, proposal_id)
    if not p.photo_id or not services.may_see_proposal(current_user, p):
        abort(404)
    # Asked again on every view (the access check runs each time), answered 304 when unchanged.
    return photos.serve(p.village_id, p.photo_id)


# --- meetings ----------------------------------------------------------------------------------


@bp.route("/scoring/meetings")
@roles_required(*STAFF)
def meetings():
    page = Page.of(queries.meetings(village_id()), request.args.get("page"))
    return render_template("scoring/meetings.html", page=page)


@bp.route("/scoring/meetings/new", methods=["GET", "POST"])
@roles_required(*STAFF)
def meeting_new():
    form = NewMeetingForm()
    if request.method == "GET":
        form.held_on.data = local_today(utcnow())
    if form.validate_on_submit():
        try:
            meeting = services.create_meeting(
                village_id(),
                held_on=form.held_on.data,
                title=form.title.data,
                attendees=form.attendees.data,
                actor_id=current_user.id,
                add_pending=form.add_pending.data,
            )
        except DomainError as e:
            form.form_errors.append(str(e))
        else:
            flash(_("Meeting created."), "ok")
            return redirect(url_for("scoring.meeting", meeting_id=meeting.id))
    return render_template("scoring/meeting_form.html", form=form, meeting=None), _page_status(form)


def _meeting_page(meeting, *, failed_id=None, failed_form=None, edit_form=None, status=200):
    page = Page.of(queries.agenda(meeting.id), request.args.get("page"))
    decided = {
        d.proposal_id: d
        for d in db.session.scalars(
            select(Decision).where(
                Decision.meeting_id == meeting.id,
                Decision.proposal_id.in_([p.id for p in page.items]),
            )
        )
    }
    forms = {}
    for p in page.items:
        if p.id == failed_id:
            forms[p.id] = failed_form
            continue
        d = decided.get(p.id)
        f = DecisionForm(formdata=None, prefix=f"d{p.id}")
        f.outcome.data = d.outcome if d else None
        f.points.data = d.points if d and d.outcome == "approve" else p.rule.points
        f.reason.data = d.reason if d else ""
        f.votes_for.data = d.votes_for if d else None
        f.votes_against.data = d.votes_against if d else None
        forms[p.id] = f
    if edit_form is None:
        edit_form = MeetingForm(formdata=None, obj=meeting)
    # A refused decision about an item not on this page (or not on the agenda at all).
    stray = []
    if failed_form is not None and failed_id not in forms:
        stray = [e for es in failed_form.errors.values() for e in es]
    return render_template(
        "scoring/meeting.html",
        meeting=meeting,
        page=page,
        decided=decided,
        forms=forms,
        edit_form=edit_form,
        action_form=FlaskForm(),
        waiting=queries.waiting_count(meeting.village_id) if meeting.is_open else 0,
        stray=stray,
        future=meeting.held_on > local_today(utcnow()),
    ), status


@bp.route("/scoring/meetings/<int:meeting_id>")
@roles_required(*STAFF)
def meeting(meeting_id: int):
    return _meeting_page(get_scoped_or_404(Meeting, meeting_id))


@bp.route("/scoring/meetings/<int:meeting_id>/edit", methods=["POST"])
@roles_required(*STAFF)
def meeting_edit(meeting_id: int):
    m = get_scoped_or_404(Meeting, meeting_id)
    form = MeetingForm()
    if form.validate_on_submit():
        try:
            services.update_meeting(
                village_id(),
                m.id,
                held_on=form.held_on.data,
                title=form.title.data,
                attendees=form.attendees.data,
            )
        except DomainError as e:
            form.form_errors.append(str(e))
        else:
            flash(_("Meeting saved."), "ok")
            return redirect(url_for("scoring.meeting", meeting_id=m.id))
    return _meeting_page(m, edit_form=form, status=422)


@bp.route("/scoring/meetings/<int:meeting_id>/agenda", methods=["POST"])
@roles_required(*STAFF)
def meeting_agenda(meeting_id: int):
    m = get_scoped_or_404(Meeting, meeting_id)
    if not FlaskForm().validate_on_submit():
        abort(400)
    try:
        n = services.add_to_agenda(village_id(), m.id, None, current_user.id)
    except DomainError as e:
        flash(str(e), "error")
    else:
        flash(_("%(n)s proposals added to the agenda.", n=n), "ok")
    return redirect(url_for("scoring.meeting", meeting_id=m.id))


@bp.route("/scoring/meetings/<int:meeting_id>/decide-all", methods=["POST"])
@roles_required(*STAFF)
def decide_all(meeting_id: int):
    m = get_scoped_or_404(Meeting, meeting_id)
    if not FlaskForm().validate_on_submit():
        abort(400)
    try:
        n = services.decide_all_as_proposed(village_id(), m.id, current_user.id)
    except DomainError as e:
        flash(str(e), "error")
    else:
        flash(_("%(n)s items approved as proposed.", n=n), "ok")
    return redirect(url_for("scoring.meeting", meeting_id=m.id))


@bp.route("/scoring/meetings/<int:meeting_id>/decide/<int:proposal_id>", methods=["POST"])
@roles_required(*STAFF)
def decide(meeting_id: int, proposal_id: int):
    m = get_scoped_or_404(Meeting, meeting_id)
    p = get_scoped_or_404(Proposal, proposal_id)
    form = DecisionForm(prefix=f"d{p.id}")
    if form.validate_on_submit():
        try:
            services.decide(
                village_id(),
                m.id,
                p.id,
                outcome=form.outcome.data,
                points=form.points.data,
                reason=form.reason.data,
                votes_for=form.votes_for.data,
                votes_against=form.votes_against.data,
                actor_id=current_user.id,
            )
        except DomainError as e:
            form.form_errors.append(str(e))
        else:
            flash(_("Decision recorded."), "ok")
            page = request.args.get("page")
            return redirect(url_for("scoring.meeting", meeting_id=m.id, page=page) + f"#p{p.id}")
    db.session.rollback()
    m = get_scoped_or_404(Meeting, meeting_id)
    return _meeting_page(m, failed_id=p.id, failed_form=form, status=422)


@bp.route("/scoring/meetings/<int:meeting_id>/close", methods=["POST"])
@roles_required(*STAFF)
def meeting_close(meeting_id: int):
    m = get_scoped_or_404(Meeting, meeting_id)
    if not FlaskForm().validate_on_submit():
        abort(400)
    try:
        services.close_meeting(village_id(), m.id, current_user.id)
    except DomainError as e:
        flash(str(e), "error")
        return redirect(url_for("scoring.meeting", meeting_id=m.id))
    flash(_("Meeting closed: approved items are now under public notice."), "ok")
    return redirect(url_for("scoring.minutes", meeting_id=m.id))


@bp.route("/scoring/meetings/<int:meeting_id>/minutes")
@roles_required(*STAFF)
def minutes(meeting_id: int):
    m = get_scoped_or_404(Meeting, meeting_id)
    # A meeting's decisions are few (one per agenda item): the minutes print them all.
    decisions = db.session.scalars(
        select(Decision)
        .where(Decision.meeting_id == m.id)
        .order_by(Decision.id)
        .options(
            db.selectinload(Decision.proposal).options(
                queries.with_households(), db.selectinload(Proposal.rule)
            )
        )
    ).all()
    village = db.session.get(Village, m.village_id)
    return render_template("scoring/minutes.html", meeting=m, decisions=decisions, village=village)


# --- objections (admin) and direct adjustment ---------------------------------------------------


@bp.route("/scoring/objections")
@roles_required("village_admin")
def objections():
    status = request.args.get("status", "open")
    page = Page.of(queries.objections(village_id(), status), request.args.get("page"))
    return render_template(
        "scoring/objections.html", page=page, status=status, form=ResolveForm(formdata=None)
    )


@bp.route("/scoring/objections/<int:objection_id>", methods=["POST"])
@roles_required("village_admin")
def resolve(objection_id: int):
    o = get_scoped_or_404(Objection, objection_id)
    form = ResolveForm()
    if form.validate_on_submit():
        try:
            services.resolve_objection(
                village_id(),
                o.id,
                uphold=form.decision.data == "uphold",
                resolution=form.resolution.data,
                actor_id=current_user.id,
            )
        except DomainError as e:
            form.form_errors.append(str(e))
        else:
            flash(_("Objection resolved."), "ok")
            return redirect(url_for("scoring.objections"))
    return render_template("scoring/resolve.html", form=form, o=o), 422


@bp.route("/scoring/adjust", methods=["GET", "POST"])
@roles_required("village_admin")
def adjust():
    form = AdjustForm()
    if request.method == "GET" and request.args.get("household"):
        form.household.data = request.args["household"][:20]
    if form.validate_on_submit():
        vid = village_id()
        household = db.session.scalar(
            select(Household).where(
                Household.village_id == vid, Household.number == form.household.data.strip()
            )
        )
        if household is None:
            form.household.errors.append(_("No household has this number."))
        else:
            try:
                services.adjust(
                    vid, household.id, form.points.data, form.reason.data, current_user.id
                )
            except DomainError as e:
                form.form_errors.append(str(e))
            else:
                flash(_("Adjustment posted to household %(n)s.", n=household.number), "ok")
                return redirect(url_for("households.detail", household_id=household.id))
    return render_template("scoring/adjust.html", form=form), _page_status(form)


# --- villager: claims and objections -----------------------------------------------------------


def _my_resident() -> Resident:
    resident = (
        db.session.get(Resident, current_user.resident_id) if current_user.resident_id else None
    )
    if resident is None or resident.village_id != current_user.village_id:
        abort(403)
    return resident


@bp.route("/me/claims")
@roles_required("villager")
def my_claims():
    _my_resident()
    page = Page.of(
        select(Proposal)
        .where(Proposal.created_by_id == current_user.id)
        .order_by(Proposal.id.desc())
        .options(db.selectinload(Proposal.rule)),
        request.args.get("page"),
    )
    decisions = {
        d.proposal_id: d
        for d in db.session.scalars(
            select(Decision)
            .where(Decision.proposal_id.in_([p.id for p in page.items]))
            .order_by(Decision.id)
        )
    }
    return render_template("scoring/my_claims.html", page=page, decisions=decisions)


@bp.route("/me/claims/new", methods=["GET", "POST"])
@roles_required("villager")
def claim_new():
    _my_resident()
    form = ClaimForm()
    # No rule chosen at first: an untouched form must not claim the first rule of the list.
    form.rule_id.choices = [SelectChoice("", _("— choose what your household did —"))]
    form.rule_id.choices += _rule_choices(village_id(), awards_only=True)
    if request.method == "GET":
        form.occurred_on.data = local_today(utcnow())
    if form.validate_on_submit():
        try:
            services.create_claim(
                village_id(),
                current_user.id,
                rule_id=form.rule_id.data,
                occurred_on=form.occurred_on.data,
                note=form.note.data,
                photo=_photo_bytes(form),
            )
        except DomainError as e:
            form.form_errors.append(str(e))
        else:
            flash(_("Claim sent: the next meeting will decide it."), "ok")
            return redirect(url_for("scoring.my_claims"))
    return render_template("scoring/claim_form.html", form=form), _page_status(form)


@bp.route("/me/objections")
@roles_required("villager")
def my_objections():
    page = Page.of(
        select(Objection)
        .where(Objection.user_id == current_user.id)
        .order_by(Objection.id.desc())
        .options(db.selectinload(Objection.item).selectinload(NoticeItem.household)),
        request.args.get("page"),
    )
    return render_template("scoring/my_objections.html", page=page, village=current_user.village)


# --- the public notice board -------------------------------------------------------------------


def _village_by_code(code: str) -> Village:
    village = db.session.scalar(select(Village).where(Village.code == code[:40]))
    if village is None:
        abort(404)
    return village


def _is_local_villager(village: Village) -> bool:
    return (
        current_user.is_authenticated
        and current_user.role == "villager"
        and current_user.village_id == village.id
    )


@bp.route("/notices")
@roles_required("village_admin", "scorer", "clerk", "villager")
def my_board():
    return redirect(url_for("scoring.board", code=current_user.village.code))


@bp.route("/v/<code>/notices")
def board(code: str):
    village = _village_by_code(code)
    page = Page.of(queries.board(village.id), request.args.get("page"))
    head_text = (request.args.get("head") or "").strip()[:80]
    check = None
    if head_text:
        parsed = parse_head(head_text)
        check = "bad" if parsed is None else head_is_in_chain(village.id, *parsed)
    objected = (
        queries.my_objections(current_user.id, [i.id for i in page.items])
        if _is_local_villager(village)
        else set()
    )
    return render_template(
        "notices/board.html",
        village=village,
        page=page,
        heads=queries.heads(village.id),
        head_text=head_text,
        check=check,
        can_object=_is_local_villager(village),
        objected=objected,
        now=utcnow(),
    )


def _may_see_item(village: Village, item: NoticeItem) -> bool:
    """The public sees an item while it is under notice and for the village's
    notice_public_days after; never one still open at its meeting or cancelled. The village's
    own users see a posted one later too; a cancelled one only its staff, its household and
    whoever objected to it."""
    if item.status == "approved":
        return False
    local = current_user.is_authenticated and current_user.village_id == village.id
    if item.status == "cancelled":
        return local and (
            current_user.role in ("village_admin", "scorer")
            or _own_household_id() == item.household_id
            or queries.my_objections(current_user.id, [item.id]) != set()
        )
    if local or item.status == "notice":
        return True
    if item.status == "posted" and item.notice_until is not None:
        return utcnow() <= item.notice_until + timedelta(days=village.notice_public_days)
    return False


def _own_household_id() -> int | None:
    if current_user.role != "villager" or not current_user.resident_id:
        return None
    resident = db.session.get(Resident, current_user.resident_id)
    return resident.household_id if resident else None


@bp.route("/v/<code>/notices/<int:item_id>")
def notice_item(code: str, item_id: int):
    village = _village_by_code(code)
    item = db.session.get(NoticeItem, item_id)
    if item is None or item.village_id != village.id or not _may_see_item(village, item):
        abort(404)
    mine = None
    if _is_local_villager(village):
        mine = db.session.scalar(
            select(Objection).where(
                Objection.item_id == item.id, Objection.user_id == current_user.id
            )
        )
    return render_template(
        "notices/item.html",
        village=village,
        item=item,
        mine=mine,
        can_object=_is_local_villager(village) and item.status == "notice" and mine is None,
        form=ObjectionForm(formdata=None),
    )


@bp.route("/v/<code>/notices/<int:item_id>/object", methods=["POST"])
@roles_required("villager")
def object_to(code: str, item_id: int):
    village = _village_by_code(code)
    if village.id != current_user.village_id:
        abort(403)
    item = db.session.get(NoticeItem, item_id)
    if item is None or item.village_id != village.id:
        abort(404)
    form = ObjectionForm()
    if form.validate_on_submit():
        try:
            services.object_to(village.id, current_user.id, item.id, form.reason.data)
        except DomainError as e:
            form.form_errors.append(str(e))
        else:
            flash(_("Objection sent. The village committee will reply."), "ok")
            return redirect(url_for("scoring.my_objections"))
    return render_template(
        "notices/item.html", village=village, item=item, mine=None, can_object=True, form=form
    ), 422
