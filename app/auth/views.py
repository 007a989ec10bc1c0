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
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm

from ..config import Config
from ..errors import DomainError
from ..extensions import db
from . import services
from .access import HOME_BY_ROLE, get_scoped_or_404, roles_required, scoped, village_id
from .forms import LoginForm, ResetPasswordForm, UserForm
from .models import User

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str | None:
    # Only local paths: never redirect a villager to another site after sign-in. Browsers read
    # a backslash as a slash ("/\evil.example" is "//evil.example") and drop tabs and newlines,
    # so a path with a backslash or a control character is refused too.
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and not any(ord(c) < 32 or ord(c) == 127 for c in target)
    ):
        return target
    return None


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    if form.validate_on_submit():
        cfg = current_app.config
        try:
            user = services.authenticate(
                form.username.data,
                form.password.data,
                request.remote_addr or "",
                limit=cfg["LOGIN_MAX_FAILURES"],
                address_limit=cfg["LOGIN_MAX_FAILURES_PER_ADDRESS"],
                lock_minutes=cfg["LOGIN_LOCK_MINUTES"],
            )
        except DomainError as e:
            form.password.errors.append(str(e))
            return render_template("auth/login.html", form=form), e.status
        login_user(user)
        return redirect(_safe_next(request.args.get("next")) or url_for("auth.home"))
    status = 422 if form.is_submitted() else 200
    return render_template("auth/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
def logout():
    logout_user()
    return redirect(url_for("auth.login"))


@bp.route("/lang/<code>")
def set_language(code: str):
    resp = redirect(_safe_next(request.args.get("next")) or url_for("auth.home"))
    if code in Config.LANGUAGES:
        resp.set_cookie("lang", code, max_age=365 * 24 * 3600, samesite="Lax", httponly=True)
    return resp


@bp.route("/")
@login_required
def home():
    endpoint = HOME_BY_ROLE.get(current_user.role)
    if endpoint and endpoint != "auth.home":
        return redirect(url_for(endpoint))
    # A clerk's counter comes with the rewards store; until then a plain welcome page.
    return render_template("auth/home.html")


@bp.route("/admin/users")
@roles_required("village_admin")
def users():
    rows = db.session.scalars(scoped(User).order_by(User.role, User.username).limit(500)).all()
    return render_template("auth/users.html", users=rows, forms=FlaskForm())


@bp.route("/admin/users/new", methods=["GET", "POST"])
@roles_required("village_admin")
def user_new():
    form = UserForm()
    if form.validate_on_submit():
        try:
            services.create_user(
                village_id=village_id(),
                role=form.role.data,
                username=form.username.data,
                password=form.password.data,
                display_name=form.display_name.data or "",
                actor_id=current_user.id,
            )
        except DomainError as e:
            form.username.errors.append(str(e))
        else:
            flash(_("User created."), "ok")
            return redirect(url_for("auth.users"))
    return render_template("auth/user_form.html", form=form), 422 if form.errors else 200


@bp.route("/admin/users/<int:user_id>/password", methods=["GET", "POST"])
@roles_required("village_admin")
def user_password(user_id: int):
    user = get_scoped_or_404(User, user_id)
    form = ResetPasswordForm()
    if form.validate_on_submit():
        services.reset_password(village_id(), user.id, form.password.data, current_user.id)
        flash(_("Password changed; the user must sign in again."), "ok")
        return redirect(url_for("auth.users"))
    return render_template("auth/password.html", form=form, user=user), 422 if form.errors else 200


@bp.route("/admin/users/<int:user_id>/enabled", methods=["POST"])
@roles_required("village_admin")
def user_enabled(user_id: int):
    form = FlaskForm()
    if not form.validate_on_submit():
        abort(400)
    get_scoped_or_404(User, user_id)  # another village's user is not found, like every page
    enabled = request.form.get("enabled") == "1"
    try:
        services.set_enabled(village_id(), user_id, enabled, current_user.id)
    except DomainError as e:
        flash(str(e), "error")
    else:
        flash(_("User activated.") if enabled else _("User deactivated."), "ok")
    return redirect(url_for("auth.users"))
