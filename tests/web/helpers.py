"""Small helpers for the web tests: posting forms with the CSRF token, and proving that a
refused request wrote nothing."""

import re
from urllib.parse import urlsplit

from sqlalchemy import func, select

from app.extensions import db

from ..conftest import csrf_token

HAN = re.compile(r"[\u4e00-\u9fff]")
# Tables a refused request may still touch: failed sign-ins are counted on purpose.
# import_batch holds a preview (the rows an admin may confirm), not village data.
VOLATILE = {"login_throttle", "import_batch"}


def post(client, path: str, data: dict | None = None, *, token: bool = True, **kw):
    """POST a form as a browser would, with the session's CSRF token unless token=False."""
    form = dict(data or {})
    if token:
        form["csrf_token"] = csrf_token(client)
    return client.post(path, data=form, **kw)


def fresh() -> None:
    """End the test's read snapshot, so the next query sees what requests committed."""
    db.session.rollback()


def count(model, *where) -> int:
    fresh()
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def snapshot() -> dict[str, list]:
    """Every row of every table (except VOLATILE), to compare before and after a request."""
    fresh()
    rows = {}
    with db.engine.connect() as conn:
        for table in db.metadata.sorted_tables:
            if table.name not in VOLATILE:
                rows[table.name] = sorted(
                    (tuple(map(repr, r)) for r in conn.execute(table.select())), key=str
                )
    return rows


def text_of(resp) -> str:
    return resp.get_data(as_text=True)


def error_messages(resp) -> list[str]:
    """The error messages a page shows (field errors, form banners, the error page's lead)."""
    html = text_of(resp)
    found = re.findall(r'<p class="error[^"]*"[^>]*>(.*?)</p>', html, re.S)
    found += re.findall(r'<p class="lead">(.*?)</p>', html, re.S)
    found += re.findall(r"<tr><td>\d+</td><td>(.*?)</td></tr>", html, re.S)
    return [m.strip() for m in found]


def assert_chinese_error(resp, status: int = 422) -> list[str]:
    """The response is refused with `status` and shows at least one message, all in Chinese."""
    assert resp.status_code == status, text_of(resp)[:2000]
    messages = error_messages(resp)
    assert messages, text_of(resp)[:2000]
    assert all(HAN.search(m) for m in messages), messages
    return messages


def location_path(resp) -> str:
    return urlsplit(resp.headers["Location"]).path
