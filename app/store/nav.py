"""The store's navigation entries, listed by app/auth/access.py (labels live in our catalog)."""

from flask_babel import lazy_gettext as _l

ADMIN = [
    ("store.venues", _l("Store")),
    ("store.cards", _l("Cards")),
    ("offline.index", _l("Offline redemptions")),  # app/offline
]
CLERK = [
    ("store.counter", _l("Counter")),
    ("store.today", _l("Today")),
    ("store.my_venue", _l("Stock")),
]
VILLAGER = [("store.paycode", _l("Pay code"))]
