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
    assert ledger.recompute_ranks(village.id) == 3
    db.session.rollback()
    sb, sc, sa = standing(b), standing(c), standing(a)
    assert (sb["earned"], sb["stars"], sb["rank"], sb["of"]) == (120, 2, 1, 3)
    assert (sc["earned"], sc["stars"], sc["rank"]) == (60, 1, 2)
    assert (sa["earned"], sa["stars"], sa["rank"]) == (0, 0, 3)
    assert sb["ranked_at"] is not None


def test_a_deduction_lowers_points_earned(village):
    h = factories.household(village)
    ledger.award(village.id, h.id, 60, "清洁日", None)
    ledger.deduct(village.id, h.id, 20, "焚烧秸秆", None)
    db.session.rollback()
    assert standing(h)["earned"] == 40 and standing(h)["stars"] == 0


def test_households_with_nothing_or_a_negative_year_rank_at_the_bottom(village):
    """A household with a negative year ranks below those that earned nothing (the old count
    ranked it above them), and ties share a rank."""
    good, none1, none2, bad = (factories.household(village) for _ in range(4))
    ledger.award(village.id, good.id, 30, "清洁日", None)
    ledger.deduct(village.id, bad.id, 10, "乱倒垃圾", None)
    ledger.recompute_ranks(village.id)
    db.session.rollback()
    assert [standing(h)["rank"] for h in (good, none1, none2, bad)] == [1, 2, 2, 4]


def test_ranks_are_as_of_their_computation_and_only_active_households_count(village):
    from app.households.services import set_status

    a, b = factories.household(village), factories.household(village)
    ledger.recompute_ranks(village.id)
    ledger.award(village.id, b.id, 50, "清洁日", None)
    db.session.rollback()
    assert standing(b)["rank"] == 1 and standing(b)["of"] == 2  # tied at 0 when computed
    set_status(village.id, a.id, "archived", None)
    ledger.recompute_ranks(village.id)
    db.session.rollback()
    assert (standing(b)["rank"], standing(b)["of"]) == (1, 1)
    new = factories.household(village)
    assert standing(new)["rank"] is None  # not ranked until the next run
