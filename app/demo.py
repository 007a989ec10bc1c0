"""The demo village 双塘村 (`flask demo`). Idempotent: a second run changes nothing.

Demo passwords exist only here.
"""

import random
from datetime import timedelta

from sqlalchemy import select

from .auth.services import create_user
from .database import transaction, utcnow
from .extensions import db
from .households.models import Household, Resident
from .households.services import HouseholdData, create_household
from .ledger import services as ledger
from .scoring import demo as scoring_demo
from .store import demo as store_demo
from .villages.models import Village
from .villages.services import create_village

CODE = "shuangtang"
PASSWORD = "demo1234"
SURNAMES = "王李张刘陈杨黄赵周吴徐孙胡朱高林何郭马罗"
GIVEN = [
    "建国",
    "德胜",
    "秀英",
    "桂兰",
    "国强",
    "春梅",
    "志刚",
    "玉珍",
    "长林",
    "凤英",
    "明华",
    "海军",
    "淑芬",
    "家富",
    "金花",
    "永红",
    "光荣",
    "翠兰",
    "卫东",
    "小芳",
    "世平",
    "爱华",
    "友才",
    "巧云",
    "新民",
    "红梅",
    "振华",
    "素珍",
    "立新",
    "月娥",
]
GROUPS = ["一组", "二组", "三组", "四组", "五组", "六组"]
AWARDS = [
    ("参加村庄清洁日义务劳动", 10),
    ("门前三包，庭院整洁", 5),
    ("孝老爱亲，照顾孤寡老人", 20),
    ("参与防汛值守", 15),
    ("垃圾分类做得好", 5),
    ("移风易俗，红事简办", 20),
    ("义务修补村道", 10),
    ("参加志愿服务队", 8),
]
DEDUCTIONS = [("乱堆乱放，经提醒未整改", 5), ("焚烧秸秆", 10)]
REDEMPTIONS = [
    ("爱心超市兑换：大米", 30),
    ("爱心超市兑换：食用油", 25),
    ("爱心超市兑换：洗衣粉", 8),
    ("幸福食堂：午餐", 5),
]


def load_demo() -> bool:
    """Create the demo village if it is not there. Returns whether it was created."""
    if db.session.scalar(select(Village.id).where(Village.code == CODE)) is not None:
        return False
    rng = random.Random(2026)
    with transaction():
        village = create_village(CODE, "双塘村", "admin", PASSWORD, None)
        vid = village.id
        for username, role, name in (
            ("scorer", "scorer", "评议员 陈立新"),
            ("shop", "clerk", "爱心超市 店员"),
            ("canteen", "clerk", "幸福食堂 工作人员"),
        ):
            create_user(
                village_id=vid, role=role, username=username, password=PASSWORD, display_name=name
            )
        households = _households(vid, rng)
        _history(vid, households, rng)
        head = db.session.scalar(select(Resident).where(Resident.household_id == households[0].id))
        head.phone = "13800000001"
        create_user(
            village_id=vid,
            role="villager",
            username="13800000001",
            password=PASSWORD,
            display_name=head.name,
            resident_id=head.id,
        )
        scoring_demo.load(vid)
        store_demo.load(vid)
    ledger.recompute_ranks(vid)
    return True


def _households(vid: int, rng: random.Random) -> list[Household]:
    made = []
    this_year = utcnow().year
    for i in range(1, 41):
        surname = SURNAMES[(i * 7) % len(SURNAMES)]
        head = surname + GIVEN[(i * 11) % len(GIVEN)]
        household = create_household(
            vid,
            HouseholdData(
                number=f"{i:03d}",
                head_name=head,
                group_name=GROUPS[(i - 1) // 7],
                address=f"双塘村{GROUPS[(i - 1) // 7]}{i}号",
                head_birth_year=rng.randint(1940, 1985),
            ),
            None,
        )
        for _n in range(rng.randint(1, 3)):
            db.session.add(
                Resident(
                    village_id=vid,
                    household_id=household.id,
                    name=surname + rng.choice(GIVEN),
                    birth_year=rng.randint(1945, this_year - 3),
                )
            )
        made.append(household)
    db.session.flush()
    return made


def _history(vid: int, households: list[Household], rng: random.Random) -> None:
    """About four months of history, posted in time order so the chain reads chronologically."""
    start = utcnow() - timedelta(days=120)
    events = [
        (start, "opening", h, rng.choice([0, 20, 40, 60, 80, 100]), "期初积分（纸质台账结转）")
        for h in households
    ]
    for h in households:
        for _n in range(rng.randint(2, 6)):
            reason, pts = rng.choice(AWARDS)
            at = start + timedelta(days=rng.randint(5, 110), minutes=rng.randint(0, 600))
            events.append((at, "award", h, pts, reason))
            if rng.random() < 0.3:  # some spend it at the supermarket or canteen soon after
                reason, cost = rng.choice(REDEMPTIONS)
                events.append((at + timedelta(days=2), "redeem", h, cost, reason))
        if rng.random() < 0.15:
            reason, pts = rng.choice(DEDUCTIONS)
            events.append((start + timedelta(days=rng.randint(5, 110)), "deduct", h, pts, reason))
    events.sort(key=lambda e: e[0])
    post = {"award": ledger.award, "deduct": ledger.deduct, "redeem": ledger.redeem}
    for at, kind, h, pts, reason in events:
        if kind == "opening":
            if pts:
                ledger.open_balance(vid, h.id, pts, None, reason, at=at)
        elif kind != "redeem" or h.balance >= pts:
            post[kind](vid, h.id, pts, reason, None, at=at)
