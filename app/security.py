"""What every request and response gets, whatever blueprint serves it: the client's real address
behind trusted proxies, security headers, cookies that are Secure behind HTTPS, one safe-redirect
check, and refusal of input no page can store (NUL bytes, ids beyond 64 bits, runaway JSON).
"""

import time

from flask import Flask, Request, request
from flask.sessions import SecureCookieSessionInterface
from flask_babel import lazy_gettext as _l
from itsdangerous import BadSignature
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from .errors import MAX_ID, DomainError, InvalidInput
from .extensions import rememberable

# No inline script anywhere: every script is a file of ours. Inline <svg> is markup, not script.
# Styles are files of ours too (no style="" attributes). Camera frames come from getUserMedia.
CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob: mediastream:",
        "connect-src 'self'",
        "worker-src 'self'",
        "manifest-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
HSTS = "max-age=31536000"
MAX_JSON_INT = 2**63 - 1  # no number we store is wider than 64 bits
MAX_JSON_DEPTH = 32


def safe_next(target: str | None) -> str | None:
    """`target` if it is a path on this site, else None: the one check for every redirect that
    comes from the request (sign-in's next=, the language switch, a form's next).

    Browsers read a backslash as a slash ("/\\evil.example" is "//evil.example") and drop tabs
    and newlines ("/\\t/evil.example" is "//evil.example"), so those are refused too.
    """
    if (
        isinstance(target, str)
        and target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and not any(ord(c) < 32 or ord(c) == 127 for c in target)
    ):
        return target
    return None


class BoundedInt(IntegerConverter):
    """`<int:id>` that stops at the largest id a table holds: a 30-digit id is a 404, not a
    database overflow."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def _depth(value, limit: int) -> int:
    """Nesting depth of parsed JSON, without recursion (a deep document must not crash us)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return deepest


def _has_nul(value) -> bool:
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                return True
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


class BadJSON(DomainError):
    status = 400
    code = "bad_json"
    message = _l("The request body is not JSON this app accepts.")


def unstorable() -> InvalidInput:
    return InvalidInput(_l("The input holds characters or numbers that cannot be stored."))


class GuardedRequest(Request):
    """JSON that is too deep, or holds a NUL, or an integer beyond 64 bits, is a 400."""

    def get_json(self, force=False, silent=False, cache=True):
        try:
            data = super().get_json(force=force, silent=silent, cache=cache)
        except RecursionError:
            if silent:
                return None
            raise BadJSON() from None
        if data is not None and _depth(data, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
            if silent:
                return None
            raise BadJSON()
        if data is not None and (_has_nul(data) or _huge_int(data)):
            raise unstorable()
        return data


def _huge_int(value) -> bool:
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, int) and not isinstance(node, bool):
            if abs(node) > MAX_JSON_INT:
                return True
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


_PLAIN = (str, int, float, bool, type(None))


class SessionInterface(SecureCookieSessionInterface):
    """The session cookie is Secure when the request came over HTTPS (directly or through a
    trusted proxy), not only when SESSION_COOKIE_SECURE says so.

    A cookie whose signature was checked once is remembered (its exact text, under the keys
    that checked it) with what it holds and when it was signed, so a clerk's next scan does
    not check the same bytes again (decoding, HMAC and JSON were a twentieth of a
    redemption's work). Its age is still checked on every request, as itsdangerous would;
    a cookie changed by one byte, or signed under a key no longer in use, is another entry
    and goes through the full check. At most MEMORY cookies per process are remembered, each
    as itsdangerous writes it (`rememberable`: not one of a valid cookie's padded spellings)."""

    MEMORY = 4096

    def __init__(self) -> None:
        self._verified: dict[tuple, tuple[int, dict]] = {}

    def open_session(self, app, request):
        val = request.cookies.get(self.get_cookie_name(app))
        if not val or not app.secret_key:
            return super().open_session(app, request)
        max_age = int(app.permanent_session_lifetime.total_seconds())
        key = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()), val)
        found = self._verified.get(key)
        if found is None:
            try:
                data, signed = self.get_signing_serializer(app).loads(
                    val, max_age=max_age, return_timestamp=True
                )
            except BadSignature:
                return self.session_class()
            found = (int(signed.timestamp()), data)
            plain = isinstance(data, dict) and all(isinstance(v, _PLAIN) for v in data.values())
            if plain and rememberable(val):
                if len(self._verified) >= self.MEMORY:
                    self._verified.clear()
                self._verified[key] = found
        elif not 0 <= int(time.time()) - found[0] <= max_age:  # itsdangerous's own test
            return self.session_class()
        return self.session_class(found[1])  # a new dict: the request may change it

    def get_cookie_secure(self, app) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"] or (request and request.is_secure))

    def save_session(self, app, session, response) -> None:
        super().save_session(app, session, response)
        if request.endpoint == "static":
            # Flask-Login looks into the session after every response, which makes Flask add
            # Vary: Cookie; a static file is the same for everyone.
            kept = [v for v in response.vary if v.lower() != "cookie"]
            if kept:
                response.headers["Vary"] = ", ".join(kept)
            else:
                response.headers.pop("Vary", None)


def cookie_secure() -> bool:
    """For cookies we set ourselves (language, device): Secure over HTTPS."""
    from flask import current_app

    return bool(current_app.config.get("SESSION_COOKIE_SECURE") or request.is_secure)


def _text_has_nul() -> bool:
    if "\x00" in request.full_path or "%00" in request.query_string.decode("latin-1"):
        return True
    if request.method in ("POST", "PUT", "PATCH") and request.mimetype in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        for key, value in request.form.items(multi=True):
            # A part with no name (key None) is no form a browser sends; refused with the rest.
            if key is None or "\x00" in key or (isinstance(value, str) and "\x00" in value):
                return True
    return False


def init_app(app: Flask) -> None:
    proxies = int(app.config.get("TRUSTED_PROXIES") or 0)
    if proxies > 0:
        # Behind nginx (or a load balancer and nginx): the address, scheme and host the client
        # used come from the last `proxies` hops of X-Forwarded-*; anything a client sends
        # beyond them is ignored.
        app.wsgi_app = ProxyFix(
            app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies, x_port=proxies
        )
    app.request_class = GuardedRequest
    app.session_interface = SessionInterface()
    app.url_map.converters["int"] = BoundedInt

    @app.before_request
    def refuse_nul():
        # PostgreSQL cannot store a NUL in text: refuse it before any page tries (a 400 in the
        # user's language, from the app's 400 handler).
        if _text_has_nul():
            raise unstorable()

    @app.after_request
    def headers(resp):
        h = resp.headers
        h.setdefault("Content-Security-Policy", CSP)
        h.setdefault("X-Frame-Options", "DENY")
        h.setdefault("X-Content-Type-Options", "nosniff")
        # /q/<token> and other addresses carry codes: never send them to another site.
        h.setdefault("Referrer-Policy", "same-origin")
        if request.is_secure:
            h.setdefault("Strict-Transport-Security", HSTS)
        return resp
