from app.extensions import db
from app.ledger import services as ledger
from app.ledger.queries import standing

from .. import factories


def test_stars_and_rank_follow_points_earned_not_the_balance(village):
    a = factories.household(village, opening=500)  # an opening balance is not earned
    b = factories.household(village)
    c = factories.household(village)
    ledger.award(village.id, b.id, 120, "孝老爱亲", None)
    ledger.award(village.id, c.id, 60, "清洁日", None)
    ledger.redeem(village.id, b.id, 100, "大米", None)  # spending never lowers stars
    db.session.rollback()
    sb, sc, sa = standing(b), standing(c), standing(a)
    assert (sb["earned"], sb["stars"], sb["rank"]) == (120, 2, 1)  # thresholds 50,100,...
    assert (sc["earned"], sc["stars"], sc["rank"]) == (60, 1, 2)
    assert (sa["earned"], sa["stars"]) == (0, 0)


def test_a_deduction_lowers_points_earned(village):
    h = factories.household(village)
    ledger.award(village.id, h.id, 60, "清洁日", None)
    ledger.deduct(village.id, h.id, 20, "焚烧秸秆", None)
    db.session.rollback()
    assert standing(h)["earned"] == 40 and standing(h)["stars"] == 0
