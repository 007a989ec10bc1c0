from flask import (
    Blueprint,
    Response,
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
from sqlalchemy import and_, select

from ..auth.access import get_scoped_or_404, roles_required, scoped, village_id
from ..auth.models import User
from ..errors import MAX_ID, DomainError
from ..extensions import db
from ..ledger.queries import entries_page
from ..pagination import KeysetPage
from . import importer, services
from .forms import HouseholdForm, ImportForm, LoginForResidentForm, NewHouseholdForm, ResidentForm
from .models import Household, Resident
from .rules import NUMBER_RE
from .services import HouseholdData

bp = Blueprint("households", __name__, url_prefix="/admin/households")


@bp.route("/")
@roles_required("village_admin", "scorer")
def index():
    q = (request.args.get("q") or "").strip()[:50]
    status = request.args.get("status", "active")
    query = scoped(Household)
    if status in ("active", "archived"):
        query = query.where(Household.status == status)
    order = Household.number
    if q:
        # Each search is one range on an index that also gives its order, so it costs the same
        # in a village of 100 households as in one of 100,000: a number by its prefix, a group
        # by its exact name, else a head's name by its first characters (sorted by name).
        if NUMBER_RE.match(q):
            query = query.where(_prefix(Household.number, q))
        elif _is_group(q):
            query = query.where(Household.group_name == q)
        else:
            query = query.where(_prefix(Household.head_name, q))
            order = (Household.head_name, Household.number)
    page = KeysetPage.of(query, order, request.args.get("after"))
    return render_template("households/index.html", page=page, q=q, status=status)


def _is_group(name: str) -> bool:
    found = db.session.scalar(
        select(Household.id)
        .where(Household.village_id == village_id(), Household.group_name == name)
        .limit(1)
    )
    return found is not None


def _prefix(column, text: str):
    return and_(column >= text, column < text + "\U0010ffff")


def _save(form, household=None):
    data = HouseholdData.clean(
        number=form.number.data,
        head_name=form.head_name.data,
        group_name=form.group_name.data,
        address=form.address.data,
        head_phone=getattr(form, "head_phone", None) and form.head_phone.data,
        head_birth_year=getattr(form, "head_birth_year", None) and form.head_birth_year.data,
        opening_balance=getattr(form, "opening_balance", None) and form.opening_balance.data,
    )
    if household is None:
        return services.create_household(village_id(), data, current_user.id)
    return services.update_household(village_id(), household.id, data, current_user.id)


@bp.route("/new", methods=["GET", "POST"])
@roles_required("village_admin")
def new():
    form = NewHouseholdForm()
    if form.validate_on_submit():
        try:
            household = _save(form)
        except DomainError as e:
            form.form_errors.append(str(e))
        else:
            flash(_("Household created."), "ok")
            return redirect(url_for("households.detail", household_id=household.id))
    return _form_page(form, None)


@bp.route("/<int:household_id>/edit", methods=["GET", "POST"])
@roles_required("village_admin")
def edit(household_id: int):
    household = get_scoped_or_404(Household, household_id)
    form = HouseholdForm(obj=household)
    if form.validate_on_submit():
        try:
            _save(form, household)
        except DomainError as e:
            form.form_errors.append(str(e))
        else:
            flash(_("Household saved."), "ok")
            return redirect(url_for("households.detail", household_id=household.id))
    return _form_page(form, household)


def _form_page(form, household):
    status = 422 if form.errors or form.form_errors else 200
    return render_template("households/form.html", form=form, household=household), status


@bp.route("/<int:household_id>")
@roles_required("village_admin", "scorer")
def detail(household_id: int):
    household = get_scoped_or_404(Household, household_id)
    entries, older = entries_page(household.id, request.args.get("before", type=int))
    logins = dict(
        db.session.execute(
            select(User.resident_id, User.username).where(
                User.resident_id.in_([r.id for r in household.residents])
            )
        ).all()
    )
    return render_template(
        "households/detail.html",
        household=household,
        entries=entries,
        older=older,
        logins=logins,
        action_form=FlaskForm(),
    )


@bp.route("/<int:household_id>/status", methods=["POST"])
@roles_required("village_admin")
def set_status(household_id: int):
    if not FlaskForm().validate_on_submit():
        abort(400)
    get_scoped_or_404(Household, household_id)
    status = "archived" if request.form.get("status") == "archived" else "active"
    services.set_status(village_id(), household_id, status, current_user.id)
    flash(_("Household archived.") if status == "archived" else _("Household restored."), "ok")
    return redirect(url_for("households.detail", household_id=household_id))


@bp.route(
    "/<int:household_id>/residents/new", methods=["GET", "POST"], defaults={"resident_id": None}
)
@bp.route("/<int:household_id>/residents/<int:resident_id>", methods=["GET", "POST"])
@roles_required("village_admin")
def resident(household_id: int, resident_id: int | None):
    household = get_scoped_or_404(Household, household_id)
    member = None
    if resident_id is not None:
        member = get_scoped_or_404(Resident, resident_id)
        if member.household_id != household.id:
            abort(404)
    form = ResidentForm(obj=member)
    if form.validate_on_submit():
        try:
            services.save_resident(
                village_id(),
                household.id,
                name=form.name.data,
                phone=form.phone.data,
                birth_year=form.birth_year.data,
                actor_id=current_user.id,
                resident_id=resident_id,
            )
        except DomainError as e:
            form.form_errors.append(str(e))
        else:
            flash(_("Resident saved."), "ok")
            return redirect(url_for("households.detail", household_id=household.id))
    status = 422 if form.errors or form.form_errors else 200
    return render_template(
        "households/resident.html", form=form, household=household, member=member
    ), status


@bp.route("/residents/<int:resident_id>/login", methods=["GET", "POST"])
@roles_required("village_admin")
def resident_login(resident_id: int):
    member = get_scoped_or_404(Resident, resident_id)
    form = LoginForResidentForm()
    if form.validate_on_submit():
        try:
            services.give_login(village_id(), member.id, form.password.data, current_user.id)
        except DomainError as e:
            form.form_errors.append(str(e))
        else:
            flash(_("Login created: the resident signs in with the phone number."), "ok")
            return redirect(url_for("households.detail", household_id=member.household_id))
    status = 422 if form.errors or form.form_errors else 200
    return render_template("households/resident_login.html", form=form, member=member), status


@bp.route("/import", methods=["GET", "POST"])
@roles_required("village_admin")
def import_file():
    """Upload → preview (nothing written) → confirm (all rows or none, once per file)."""
    form = ImportForm()
    result = None
    if form.validate_on_submit():
        upload = form.file.data
        try:
            result = importer.preview(
                village_id(), upload.filename or "", upload.read(), current_user.id
            )
        except DomainError as e:
            form.file.errors.append(str(e))
    failed = bool(form.errors or (result and result.errors))
    return render_template(
        "households/import.html",
        form=form,
        result=result,
        columns=importer.COLUMNS,
        confirm_form=FlaskForm(),
    ), 422 if failed else 200


@bp.route("/import/confirm", methods=["POST"])
@roles_required("village_admin")
def import_confirm():
    if not FlaskForm().validate_on_submit():
        abort(400)
    batch_id = request.form.get("batch", type=int)
    sha256 = (request.form.get("sha256") or "")[:64]
    if not batch_id or batch_id > MAX_ID:
        abort(404)
    try:
        n = importer.confirm(village_id(), batch_id, sha256, current_user.id)
    except DomainError as e:
        if e.status == 404:
            abort(404)
        flash(str(e), "error")
        return redirect(url_for("households.import_file"))
    flash(_("%(n)s households imported.", n=n), "ok")
    return redirect(url_for("households.index"))


@bp.route("/import/template.xlsx")
@roles_required("village_admin")
def import_template():
    return Response(
        importer.template_xlsx(),
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={
            "Content-Disposition": "attachment; filename=households-template.xlsx; "
            "filename*=UTF-8''%E6%88%B7%E7%B1%8D%E5%AF%BC%E5%85%A5%E6%A8%A1%E6%9D%BF.xlsx"
        },
    )
