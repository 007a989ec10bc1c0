import secrets

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
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from itsdangerous import BadSignature, URLSafeTimedSerializer

from ..config import Config
from ..errors import DomainError
from ..extensions import db
from ..security import cookie_secure, safe_next
from . import services, sessions
from .access import HOME_BY_ROLE, get_scoped_or_404, roles_required, scoped, village_id
from .forms import ChangePasswordForm, LoginForm, ResetPasswordForm, UserForm
from .models import User

bp = Blueprint("auth", __name__)


DEVICE_COOKIE = "vp_device"
DEVICE_DAYS = 365
DEVICE_NAMES = 5  # accounts one browser remembers (a shared counter PC has a few clerks)


def _devices() -> dict[str, str]:
    """{username: nonce} of the accounts that signed in on this browser before (signed)."""
    raw = request.cookies.get(DEVICE_COOKIE)
    if not raw:
        return {}
    try:
        data = _device_serializer().loads(raw, max_age=DEVICE_DAYS * 24 * 3600)
    except BadSignature:
        return {}
    return data if isinstance(data, dict) else {}


def _device_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="village-points-device")


def _remember_device(resp, username: str) -> None:
    devices = _devices()
    name = username.lower()
    nonce = devices.pop(name, None) or secrets.token_urlsafe(12)
    devices = dict(list(devices.items())[-(DEVICE_NAMES - 1) :])
    devices[name] = nonce
    resp.set_cookie(
        DEVICE_COOKIE,
        _device_serializer().dumps(devices),
        max_age=DEVICE_DAYS * 24 * 3600,
        httponly=True,
        samesite="Lax",
        secure=cookie_secure(),
    )


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    if form.validate_on_submit():
        cfg = current_app.config
        username = form.username.data.strip()
        try:
            user = services.authenticate(
                username,
                form.password.data,
                request.remote_addr or "",
                services.SignInLimits(
                    per_account=cfg["LOGIN_MAX_FAILURES"],
                    per_address=cfg["LOGIN_MAX_FAILURES_PER_ADDRESS"],
                    per_device=cfg["LOGIN_MAX_FAILURES"],
                    minutes=cfg["LOGIN_LOCK_MINUTES"],
                ),
                device=_devices().get(username.lower()),
            )
        except DomainError as e:
            form.password.errors.append(str(e))
            return render_template("auth/login.html", form=form), e.status
        sessions.start(user)
        resp = redirect(safe_next(request.args.get("next")) or url_for("auth.home"))
        _remember_device(resp, user.username)
        return resp
    status = 422 if form.is_submitted() else 200
    return render_template("auth/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
def logout():
    # CSRF-checked like every form: a page elsewhere cannot sign a clerk out.
    sessions.end()
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def own_password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            services.change_own_password(
                current_user.id,
                form.current.data,
                form.password.data,
                keep_session=sessions.current_hash(),
            )
        except DomainError as e:
            form.current.errors.append(str(e))
        else:
            flash(_("Password changed. Your other devices are signed out."), "ok")
            return redirect(url_for("auth.home"))
    status = 422 if form.errors else 200
    return render_template("auth/own_password.html", form=form), status


@bp.route("/lang/<code>")
def set_language(code: str):
    resp = redirect(safe_next(request.args.get("next")) or url_for("auth.home"))
    if code in Config.LANGUAGES:
        resp.set_cookie(
            "lang",
            code,
            max_age=365 * 24 * 3600,
            samesite="Lax",
            httponly=True,
            secure=cookie_secure(),
        )
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
