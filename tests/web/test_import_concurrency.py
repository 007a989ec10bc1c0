"""Several confirmations of one import preview at once (double taps, two admins), through a real
gunicorn with several workers: the households are written exactly once."""

import re
import threading

import pytest
import requests
from sqlalchemy import func, select

from app.extensions import db
from app.households.models import Household
from app.ledger.chain import verify
from app.ledger.models import LedgerEntry

from .. import factories
from ..services.test_import import ROWS, ZH_HEADER, csv_bytes

pytestmark = pytest.mark.server
THREADS = 8


def admin_session(base: str, username: str) -> requests.Session:
    s = requests.Session()
    token = re.search(
        r'name="csrf_token" type="hidden" value="([^"]+)"', s.get(base + "/login").text
    ).group(1)
    resp = s.post(
        base + "/login",
        data={"username": username, "password": factories.PASSWORD, "csrf_token": token},
        allow_redirects=False,
    )
    assert resp.status_code == 302, resp.text
    return s


def test_confirming_one_preview_many_times_at_once_writes_it_once(village, live_server):
    admin = factories.user(village, "village_admin")
    s = admin_session(live_server, admin.username)
    page = s.get(live_server + "/admin/households/import").text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    html = s.post(
        live_server + "/admin/households/import",
        data={"csrf_token": token},
        files={"file": ("户籍.csv", csv_bytes([ZH_HEADER, *ROWS]))},
    ).text
    form = {
        "batch": re.search(r'name="batch" value="(\d+)"', html).group(1),
        "sha256": re.search(r'name="sha256" value="([0-9a-f]+)"', html).group(1),
        "csrf_token": re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1),
    }
    barrier = threading.Barrier(THREADS)
    codes: list = [None] * THREADS

    def run(i: int) -> None:
        with requests.Session() as t:
            t.cookies.update(s.cookies.get_dict())
            barrier.wait()
            r = t.post(
                live_server + "/admin/households/import/confirm",
                data=form,
                allow_redirects=False,
                timeout=60,
            )
            codes[i] = r.status_code

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [302] * THREADS  # the others are told it was already imported
    db.session.rollback()
    assert db.session.scalar(select(func.count(Household.id))) == 3
    assert db.session.scalar(select(func.count(LedgerEntry.id))) == 2  # two opening balances
    assert verify() == []
