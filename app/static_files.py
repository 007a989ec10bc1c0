"""Our static files under content-hashed names, cached by browsers for a year.

`url_for('static', filename='app.css')` gives /static/app.<10 hex of its sha256>.css: a changed
file gets a new address, so the old one may be cached forever (`immutable`) and a villager's
phone never asks for it again. The files are read once at start (they are small) and served
from memory; responses are compressed by Flask-Compress like every other response. An address
without the hash (or with an old one) still works, revalidated each time.
"""

import hashlib
import mimetypes
import re
from pathlib import Path

from flask import Flask, Response, abort, request

YEAR = 365 * 24 * 3600
_HASHED = re.compile(r"^(?P<stem>.+)\.(?P<hash>[0-9a-f]{10})\.(?P<ext>[A-Za-z0-9]+)$")


def init_app(app: Flask) -> None:
    folder = Path(app.static_folder)
    files: dict[str, tuple[bytes, str, str]] = {}  # name -> (content, mimetype, hash)
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            name = path.relative_to(folder).as_posix()
            data = path.read_bytes()
            mimetype = mimetypes.guess_type(name)[0] or "application/octet-stream"
            files[name] = (data, mimetype, hashlib.sha256(data).hexdigest()[:10])
    app.extensions["static_files"] = files

    @app.url_defaults
    def hashed_name(endpoint: str, values: dict) -> None:
        if endpoint == "static" and values.get("filename") in files:
            name = values["filename"]
            stem, dot, ext = name.rpartition(".")
            if dot:
                values["filename"] = f"{stem}.{files[name][2]}.{ext}"

    def serve(filename: str):
        m = _HASHED.match(filename)
        name = f"{m['stem']}.{m['ext']}" if m else filename
        found = files.get(name)
        if found is None:
            abort(404)
        data, mimetype, digest = found
        resp = Response(data, mimetype=mimetype)
        if m and m["hash"] == digest:
            resp.headers["Cache-Control"] = f"public, max-age={YEAR}, immutable"
        else:
            resp.headers["Cache-Control"] = "no-cache"
            resp.set_etag(digest)
            resp.make_conditional(request)
        return resp

    app.view_functions["static"] = serve


def export(app: Flask, dest: Path) -> list[Path]:
    """Write every static file under its hashed name into `dest`/static/, for nginx to serve
    from disk (deploy/nginx/village-points.conf): only hashed names, so what nginx finds may be
    cached for ever, and any other address falls through to the app. Old hashed files are left:
    a page still open in a browser may ask for them."""
    written = []
    for name, (data, _mimetype, digest) in app.extensions["static_files"].items():
        stem, dot, ext = name.rpartition(".")
        target = dest / "static" / (f"{stem}.{digest}.{ext}" if dot else name)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() or target.read_bytes() != data:
            tmp = target.with_name(target.name + ".tmp")
            tmp.write_bytes(data)
            tmp.replace(target)
        written.append(target)
    return written
