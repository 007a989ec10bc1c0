"""A villager's history on /me: 20 entries a page, older pages by link, only the own household."""

import html
import re

from app.extensions import db
from app.households.models import Resident
from app.ledger import services as ledger

from .. import factories
from .helpers import post, text_of


def shown_points(resp) -> list[str]:
    return re.findall(r'<span class="pts [a-z]+">([+-]\d+)</span>', text_of(resp))


def older_link(resp) -> str | None:
    m = re.search(r'href="(/me\?before=\d+)"', text_of(resp))
    return html.unescape(m.group(1)) if m else None


def test_me_pages_through_the_households_history_newest_first(app, client, village):
    villager = factories.user(village, "villager")
    household_id = db.session.get(Resident, villager.resident_id).household_id
    for points in range(1, 26):
        ledger.award(village.id, household_id, points, f"第{points}次", None)
    neighbour = factories.household(village, number="9999")
    ledger.award(village.id, neighbour.id, 777, "邻居的分", None)

    post(client, "/login", {"username": villager.username, "password": factories.PASSWORD})
    first = client.get("/me")
    assert first.status_code == 200
    assert 'id="balance">325<' in text_of(first)  # 1 + 2 + ... + 25
    assert shown_points(first) == [f"+{p}" for p in range(25, 5, -1)]

    older = client.get(older_link(first))
    assert older.status_code == 200
    assert shown_points(older) == ["+5", "+4", "+3", "+2", "+1"]
    assert 'id="balance"' not in text_of(older)
    assert older_link(older) is None

    # An entry id of another household only bounds the page: its entries never show.
    for resp in (client.get("/me?before=999999"), client.get("/me?before=x")):
        assert resp.status_code == 200
        assert "+777" not in shown_points(resp) and "邻居的分" not in text_of(resp)
