"""Demo scoring data for 双塘村: a rule catalogue, a meeting whose items are posted, one closed
yesterday whose items are under notice (one with an objection), and an open meeting with its
agenda. Called by app.demo.load_demo inside its transaction."""

from datetime import datetime, time, timedelta

from sqlalchemy import select

from ..auth.models import User
from ..database import utcnow
from ..extensions import db
from ..households.models import Household
from ..ledger.models import LedgerEntry
from . import services
from .models import ChainHead, NoticeItem
from .rules import LOCAL_TZ, local_today

RULES = [
    ("public_service", "参加村庄清洁日义务劳动", 10, 4, "month"),
    ("public_service", "参与防汛抗旱值守", 15, None, None),
    ("public_service", "义务修补村道、沟渠", 10, None, None),
    ("public_service", "参加志愿服务队活动", 8, 4, "month"),
    ("environment", "门前三包，庭院整洁", 5, 1, "month"),
    ("environment", "垃圾分类投放到位", 5, 1, "month"),
    ("environment", "乱堆乱放，经提醒未整改", -5, None, None),
    ("environment", "焚烧秸秆、垃圾", -10, None, None),
    ("filial", "照顾孤寡、留守老人", 20, None, None),
    ("filial", "评为好媳妇、好婆婆", 30, 1, "year"),
    ("filial", "不尽赡养义务，经调解不改", -20, None, None),
    ("customs", "红事简办", 20, 1, "year"),
    ("customs", "白事简办、文明祭扫", 20, 1, "year"),
    ("customs", "大操大办、铺张浪费", -20, None, None),
    ("law", "主动调解邻里纠纷", 10, None, None),
    ("law", "参加治安巡逻", 8, 4, "month"),
    ("law", "聚众赌博", -20, None, None),
    ("law", "违法违规受到处理", -30, None, None),
    ("civility", "拾金不昧", 15, None, None),
    ("civility", "见义勇为", 50, None, None),
    ("civility", "子女考入大学", 20, 1, "year"),
]


def load(village_id: int) -> None:
    now = utcnow()
    today = local_today(now)
    users = {
        u.username: u.id
        for u in db.session.scalars(select(User).where(User.village_id == village_id))
    }
    admin, scorer, villager = users["admin"], users["scorer"], users["13800000001"]
    rule = {
        title: services.save_rule(
            village_id, services.RuleData(cat, title, pts, cap, period), admin
        ).id
        for cat, title, pts, cap, period in RULES
    }
    hh = {
        h.number: h.id
        for h in db.session.scalars(select(Household).where(Household.village_id == village_id))
    }

    def propose(numbers, title, days_ago, note="", source="scorer", actor=scorer):
        return services.create_proposal(
            village_id,
            household_ids=[hh[n] for n in numbers],
            rule_id=rule[title],
            occurred_on=today - timedelta(days=days_ago),
            note=note,
            source=source,
            actor_id=actor,
            now=now,
        ).id

    def meeting(title, days_ago, attendees):
        return services.create_meeting(
            village_id,
            held_on=today - timedelta(days=days_ago),
            title=title,
            attendees=attendees,
            actor_id=scorer,
        ).id

    attendees = (
        "村支书 王德胜，村主任 李国强，评议员 陈立新，党员代表 张秀英，村民代表 刘长林、赵春梅"
    )

    # 1. Decided three weeks ago; its notice ended two weeks ago and its items are posted.
    ids = [
        propose([f"{i:03d}" for i in range(1, 8)], "参加村庄清洁日义务劳动", 25, "一组清洁日"),
        propose(["005"], "照顾孤寡、留守老人", 27, "常年照顾邻居五保户"),
        propose(["012"], "焚烧秸秆、垃圾", 24, "网格员巡查发现，已劝阻"),
        propose(["018"], "拾金不昧", 26, "捡到钱包归还失主"),
    ]
    m1 = meeting("十月道德文明评议会", 21, attendees)
    for pid in ids[:2]:
        services.decide(village_id, m1, pid, outcome="approve", actor_id=scorer)
    services.decide(
        village_id,
        m1,
        ids[2],
        outcome="approve",
        points=-5,
        reason="首次发现，减半扣分",
        votes_for=6,
        votes_against=1,
        actor_id=scorer,
    )
    services.decide(
        village_id,
        m1,
        ids[3],
        outcome="reject",
        reason="失主未能确认，下次补充材料",
        actor_id=scorer,
    )
    services.close_meeting(village_id, m1, scorer, now=now - timedelta(days=20))
    for item_id in db.session.scalars(select(NoticeItem.id).where(NoticeItem.meeting_id == m1)):
        services.post_item(village_id, item_id, now)

    # 2. Closed yesterday: under notice now; the demo villager objects to one item.
    ids = [
        propose(["009", "010", "011", "013"], "垃圾分类投放到位", 6),
        propose([f"{i:03d}" for i in range(15, 21)], "义务修补村道、沟渠", 5, "修补三组村道"),
        propose(["001"], "红事简办", 8, "儿子婚礼简办，不收礼金", source="claim", actor=villager),
        propose(["023"], "乱堆乱放，经提醒未整改", 4),
    ]
    m2 = meeting("十一月道德文明评议会", 1, attendees)
    for pid in ids:
        services.decide(village_id, m2, pid, outcome="approve", actor_id=scorer)
    services.close_meeting(village_id, m2, scorer, now=now - timedelta(days=1))
    target = db.session.scalar(
        select(NoticeItem.id).where(
            NoticeItem.meeting_id == m2, NoticeItem.household_id == hh["011"]
        )
    )
    services.object_to(
        village_id, villager, target, "011户门前仍堆着杂物，垃圾分类并不到位", now=now
    )

    # 3. Open: the next meeting, with its agenda waiting for decisions.
    propose(["001"], "照顾孤寡、留守老人", 2, "照顾独居的王奶奶", source="claim", actor=villager)
    propose([f"{i:03d}" for i in range(22, 29)], "参与防汛抗旱值守", 3, "汛期夜间值守")
    propose(["030"], "主动调解邻里纠纷", 1)
    propose(["033"], "聚众赌博", 2, "派出所通报")
    services.create_meeting(
        village_id,
        held_on=today,  # being held today: it can be decided and closed in the tour
        title="十二月道德文明评议会",
        attendees="",
        actor_id=scorer,
    )
    _chain_heads(village_id, now)


def _chain_heads(village_id: int, now) -> None:
    """The board's daily heads for the last two weeks, as the daily posting would have
    recorded them (the demo's history is made at once, so they are computed here)."""
    entries = db.session.execute(
        select(LedgerEntry.seq, LedgerEntry.hash, LedgerEntry.created_at)
        .where(LedgerEntry.village_id == village_id)
        .order_by(LedgerEntry.seq)
    ).all()
    today = local_today(now)
    for back in range(14, 0, -1):
        day = today - timedelta(days=back)
        end = datetime.combine(day + timedelta(days=1), time()) - LOCAL_TZ
        last = None
        for seq, digest, at in entries:
            if at < end:
                last = (seq, digest)
        if last:
            db.session.add(ChainHead(village_id=village_id, day=day, seq=last[0], hash=last[1]))
    services.record_head(village_id, now)
