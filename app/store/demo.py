"""The demo village's love supermarket and happiness canteen, with the clerks `shop` and
`canteen` bound to them. Called by app/demo.py inside its transaction."""

from sqlalchemy import select

from ..auth.models import User
from ..extensions import db
from . import services
from .services import ItemData

GOODS = [
    # name, points, unit, stock
    ("大米（5公斤）", 30, "袋", 40),
    ("食用油（1.8升）", 25, "桶", 30),
    ("挂面", 6, "把", 60),
    ("食盐", 2, "袋", 80),
    ("酱油", 5, "瓶", 40),
    ("香醋", 4, "瓶", 30),
    ("白糖", 5, "袋", 30),
    ("鸡蛋（10个）", 12, "盒", 25),
    ("洗衣粉", 8, "袋", 50),
    ("洗洁精", 6, "瓶", 45),
    ("香皂", 3, "块", 80),
    ("牙膏", 5, "支", 40),
    ("毛巾", 6, "条", 50),
    ("卫生纸（10卷）", 10, "提", 35),
    ("垃圾袋", 3, "卷", 4),  # low on purpose: the venue page shows a warning
]
MEALS = [
    # name, points (below the first age tier), slot
    ("早餐：包子稀饭", 3, "breakfast"),
    ("午餐：两荤一素", 8, "lunch"),
    ("晚餐：面条", 5, "dinner"),
]


def load(village_id: int) -> None:
    shop = services.save_venue(
        village_id,
        None,
        kind="supermarket",
        name="爱心超市",
        hours="周一至周六 8:00–11:30，14:30–17:30",
        actor_id=None,
    )
    for name, points, unit, stock in GOODS:
        services.save_item(
            village_id,
            shop.id,
            None,
            ItemData(name=name, points=points, unit=unit, stock=stock, low_stock=5),
            None,
        )
    canteen = services.save_venue(
        village_id,
        None,
        kind="canteen",
        name="幸福食堂",
        hours="早 7:00–8:00，午 11:30–12:30，晚 17:30–18:30",
        actor_id=None,
    )
    for name, points, slot in MEALS:
        services.save_item(
            village_id,
            canteen.id,
            None,
            ItemData(name=name, points=points, unit="份", slot=slot, daily_limit=1),
            None,
        )
    for username, venue in (("shop", shop), ("canteen", canteen)):
        user = db.session.scalar(
            select(User).where(User.village_id == village_id, User.username == username)
        )
        if user is not None:
            user.venue_id = venue.id
