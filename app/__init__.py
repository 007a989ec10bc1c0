"""Village Points (乡村积分): create_app() is a list of register_* calls."""

import os
from pathlib import Path

from flask import Flask, render_template, request
from flask_babel import gettext as _
from flask_login import current_user

from .config import Config, secret_key
from .database import configure_engine
from .extensions import babel, compress, csrf, db, login_manager, migrate

ROOT = Path(__file__).resolve().parent.parent


def create_app(config: type[Config] | dict | None = None) -> Flask:
    app = Flask(
        __name__,
        instance_path=os.environ.get("INSTANCE_PATH") or str(ROOT / "instance"),
        template_folder=str(ROOT / "templates"),
    )
    app.config.from_object(Config)
    if isinstance(config, dict):
        app.config.update(config)
    elif config is not None:
        app.config.from_object(config)
    # The environment fills what the given config left empty.
    for key, value in Config.from_environ(app.instance_path).items():
        if not app.config.get(key):
            app.config[key] = value
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = secret_key(
            app.config["SQLALCHEMY_DATABASE_URI"], app.instance_path
        )
    register_extensions(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_commands(app)
    register_template_helpers(app)
    return app


def select_locale() -> str:
    lang = request.cookies.get("lang") if request else None
    return lang if lang in Config.LANGUAGES else Config.BABEL_DEFAULT_LOCALE


def register_extensions(app: Flask) -> None:
    from . import (
        models,  # noqa: F401  - every model registered before mappers configure
        security,
        static_files,
    )
    from .ops import request_log

    request_log.init_app(app)  # first: every later hook and error has the request id
    security.init_app(app)
    static_files.init_app(app)
    compress.init_app(app)
    db.init_app(app)
    with app.app_context():
        configure_engine(db.engine)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    translation_dirs = [str(p) for p in sorted((ROOT / "app").glob("**/translations"))]
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = ";".join(translation_dirs)
    babel.init_app(app, locale_selector=select_locale)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = None
    from .auth import sessions

    @login_manager.user_loader
    def load_user(user_id: str):
        uid, _sep, version = user_id.partition(":")
        if not uid.isdigit() or not version.isdigit():
            return None
        return sessions.load(int(uid), int(version))


def register_blueprints(app: Flask) -> None:
    from .auth.views import bp as auth_bp
    from .certificates.views import bp as certificates_bp
    from .elder.views import bp as elder_bp
    from .households.views import bp as households_bp
    from .ledger.views import bp as ledger_bp
    from .messages.views import bp as messages_bp
    from .offline.api import bp as offline_api_bp
    from .offline.views import bp as offline_bp
    from .ops.health import bp as ops_bp
    from .reports.views import bp as reports_bp
    from .scoring.views import bp as scoring_bp
    from .store.api import bp as store_api_bp
    from .store.views import bp as store_bp
    from .villages.views import bp as villages_bp

    for bp in (
        auth_bp,
        elder_bp,
        villages_bp,
        households_bp,
        ledger_bp,
        messages_bp,
        scoring_bp,
        store_bp,
        store_api_bp,
        reports_bp,
        certificates_bp,
    ):
        app.register_blueprint(bp)
    app.register_blueprint(ops_bp)
    app.register_blueprint(offline_api_bp)
    app.register_blueprint(offline_bp)


def register_errorhandlers(app: Flask) -> None:
    from sqlalchemy.exc import DataError

    from .errors import DomainError
    from .ops.request_log import request_id

    def render_error(code: int, message: str):
        if request.path.startswith("/api/"):
            return {"error": str(code), "message": message, "request_id": request_id()}, code
        return render_template("errors/error.html", code=code, message=message), code

    @app.errorhandler(400)
    def bad_request(_e):
        return render_error(400, _("The form has expired or is incomplete. Please try again."))

    @app.errorhandler(403)
    def forbidden(_e):
        return render_error(403, _("You may not open this page."))

    @app.errorhandler(404)
    def not_found(_e):
        return render_error(404, _("This page does not exist."))

    @app.errorhandler(413)
    def too_large(_e):
        return render_error(413, _("The file is too large."))

    @app.errorhandler(DomainError)
    def domain_error(e: DomainError):
        if request.path.startswith("/api/"):
            return {"error": e.code, "message": str(e)}, e.status
        return render_template("errors/error.html", code=e.status, message=str(e)), e.status

    @app.errorhandler(OverflowError)
    @app.errorhandler(DataError)
    def unstorable(_e):
        # A backstop: inputs are checked where they are read, but a number or text the database
        # cannot hold must never become a crash page. Nothing was written: roll back.
        db.session.rollback()
        return render_error(422, _("The input holds characters or numbers that cannot be stored."))

    @app.errorhandler(500)
    def server_error(_e):
        db.session.rollback()
        app.logger.error("rid=%s ended in the error above", request_id())
        return render_error(500, _("Something went wrong. Please try again."))


def register_commands(app: Flask) -> None:
    from .cli import register

    register(app)


def register_template_helpers(app: Flask) -> None:
    from .auth.access import nav_items

    @app.context_processor
    def inject():
        return {
            "current_locale": select_locale() if request else Config.BABEL_DEFAULT_LOCALE,
            "languages": Config.LANGUAGES,
            "nav_items": nav_items(current_user) if current_user else [],
        }
