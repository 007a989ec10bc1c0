"""Who may open which core page: every route, every role, and never another village's data."""

import pytest

from app.auth.models import User
from app.extensions import db

from .. import factories
from .helpers import assert_chinese_error, location_path, post, snapshot, text_of

ROLES = ["signed_out", "county_admin", "village_admin", "scorer", "clerk", "villager"]
ADMIN = {"village_admin"}
STAFF = {"village_admin", "scorer"}
COUNTY = {"county_admin"}
VILLAGER = {"villager"}

# (method, path template, form data, roles allowed, status when allowed).
# A POST that an allowed role makes is refused by the form (422) where that is possible, so the
# table also proves the route reached its form; the two actions without fields change nothing
# harmful and come last.
ROUTES = [
    ("GET", "/admin/households/", None, STAFF, 200),
    ("GET", "/admin/households/new", None, ADMIN, 200),
    ("POST", "/admin/households/new", {}, ADMIN, 422),
    ("GET", "/admin/households/{h}", None, STAFF, 200),
    ("GET", "/admin/households/{h}/edit", None, ADMIN, 200),
    ("POST", "/admin/households/{h}/edit", {"number": "", "head_name": ""}, ADMIN, 422),
    ("GET", "/admin/households/{h}/residents/new", None, ADMIN, 200),
    ("POST", "/admin/households/{h}/residents/new", {}, ADMIN, 422),
    ("GET", "/admin/households/{h}/residents/{r}", None, ADMIN, 200),
    ("POST", "/admin/households/{h}/residents/{r}", {"name": ""}, ADMIN, 422),
    ("GET", "/admin/households/residents/{r}/login", None, ADMIN, 200),
    ("POST", "/admin/households/residents/{r}/login", {}, ADMIN, 422),
    ("GET", "/admin/households/import", None, ADMIN, 200),
    ("POST", "/admin/households/import", {}, ADMIN, 422),
    ("GET", "/admin/users", None, ADMIN, 200),
    ("GET", "/admin/users/new", None, ADMIN, 200),
    ("POST", "/admin/users/new", {}, ADMIN, 422),
    ("GET", "/admin/users/{u}/password", None, ADMIN, 200),
    ("POST", "/admin/users/{u}/password", {}, ADMIN, 422),
    ("GET", "/admin/settings", None, ADMIN, 200),
    ("POST", "/admin/settings", {}, ADMIN, 422),
    ("GET", "/county/villages", None, COUNTY, 200),
    ("POST", "/county/villages", {}, COUNTY, 422),
    ("GET", "/me", None, VILLAGER, 200),
    ("POST", "/admin/users/{u}/enabled", {"enabled": "1"}, ADMIN, 302),
    ("POST", "/admin/households/{h}/status", {"status": "active"}, ADMIN, 302),
]


@pytest.fixture
def targets(village):
    """A household with its head, and a scorer, all of the test village."""
    h = factories.household(village, number="0001", head="李桂英")
    other = factories.user(village, "scorer")
    return {"h": h.id, "r": h.residents[0].id, "u": other.id}


def _request(client, method, path, data):
    if method == "GET":
        return client.get(path)
    return post(client, path, data)


@pytest.mark.parametrize("role", ROLES)
def test_each_role_opens_exactly_its_own_pages(client, login_as, targets, role):
    if role != "signed_out":
        login_as(role)
    wrong = []
    for method, template, data, allowed, ok_status in ROUTES:
        path = template.format(**targets)
        resp = _request(client, method, path, data)
        if role == "signed_out":
            good = resp.status_code == 302 and location_path(resp) == "/login"
        else:
            expected = ok_status if role in allowed else 403
            good = resp.status_code == expected
            if good and ok_status == 302 and role in allowed:
                good = location_path(resp) != "/login"
        if not good:
            wrong.append((role, method, path, resp.status_code, resp.headers.get("Location")))
    assert wrong == []


def test_signed_out_visitor_is_sent_to_login_with_the_page_to_return_to(client, targets):
    resp = client.get(f"/admin/households/{targets['h']}")
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith("/login?next=")
    assert "%2Fadmin%2Fhouseholds%2F" in resp.headers["Location"]


def test_forbidden_role_sees_a_chinese_403_page(client, login_as):
    login_as("clerk")
    assert_chinese_error(client.get("/admin/households/"), 403)


@pytest.fixture
def village_a_records(village):
    """Village A (the fixture village) with a household, its head and a scorer."""
    h = factories.household(village, number="A001", head="张秀兰", opening=40)
    scorer = factories.user(village, "scorer")
    return {"h": h.id, "r": h.residents[0].id, "u": scorer.id, "number": "A001"}


@pytest.fixture
def village_b(app):
    return factories.village("xiwan", "西湾村")


CROSS_VILLAGE = [
    ("GET", "/admin/households/{h}", None),
    ("GET", "/admin/households/{h}/edit", None),
    ("POST", "/admin/households/{h}/edit", {"number": "B999", "head_name": "改名"}),
    ("POST", "/admin/households/{h}/status", {"status": "archived"}),
    ("GET", "/admin/households/{h}/residents/new", None),
    ("POST", "/admin/households/{h}/residents/new", {"name": "混入者"}),
    ("GET", "/admin/households/{h}/residents/{r}", None),
    ("POST", "/admin/households/{h}/residents/{r}", {"name": "改名", "phone": "13912345678"}),
    ("GET", "/admin/households/{own_h}/residents/{r}", None),
    ("POST", "/admin/households/{own_h}/residents/{r}", {"name": "改名"}),
    ("GET", "/admin/households/residents/{r}/login", None),
    ("POST", "/admin/households/residents/{r}/login", {"password": "long-enough-1"}),
    ("GET", "/admin/users/{u}/password", None),
    ("POST", "/admin/users/{u}/password", {"password": "long-enough-1"}),
    ("POST", "/admin/users/{u}/enabled", {"enabled": "0"}),
]


def test_village_admin_of_another_village_gets_404_and_writes_nothing(
    client, login_as, village_a_records, village_b
):
    own = factories.household(village_b, number="B001")
    login_as("village_admin", of_village=village_b)
    ids = dict(village_a_records, own_h=own.id)
    before = snapshot()
    wrong = []
    for method, template, data in CROSS_VILLAGE:
        path = template.format(**ids)
        resp = _request(client, method, path, data)
        if resp.status_code != 404:
            wrong.append((method, path, resp.status_code))
    assert wrong == []
    assert snapshot() == before
    page = client.get(f"/admin/households/{ids['h']}")
    assert_chinese_error(page, 404)
    assert "张秀兰" not in text_of(page) and "A001" not in text_of(page)


def test_another_villages_households_are_not_listed_or_found_by_search(
    client, login_as, village_a_records, village_b
):
    login_as("scorer", of_village=village_b)
    resp = client.get("/admin/households/?q=A001")
    assert resp.status_code == 200
    listing = text_of(resp).split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    assert "A001" not in listing
    assert "张秀兰" not in text_of(resp)
    assert client.get(f"/admin/households/{village_a_records['h']}").status_code == 404


def test_another_villages_users_are_not_listed(client, login_as, village_a_records, village_b):
    login_as("village_admin", of_village=village_b)
    a_scorer = db.session.get(User, village_a_records["u"])
    html = text_of(client.get("/admin/users"))
    assert a_scorer.username not in html
    assert "shuangtang-first-admin" not in html
    assert "xiwan-first-admin" in html


def test_disabled_user_loses_access_on_the_next_request(client, login_as, village):
    user = login_as("scorer")
    assert client.get("/admin/households/").status_code == 200
    from app.auth.services import set_enabled

    admin = db.session.scalar(db.select(User).where(User.username == "shuangtang-first-admin"))
    set_enabled(village.id, user.id, False, admin.id)
    resp = client.get("/admin/households/")
    assert resp.status_code == 302 and location_path(resp) == "/login"
