"""The offline counter's village setting (its words live in this domain's catalog)."""

from flask_babel import lazy_gettext as _l

OFFLINE_CAP_MAX = 100_000
OFFLINE_CAP_LABEL = _l("Most points a household may redeem per day at a counter that is offline")
OFFLINE_CAP_RANGE = _l("The offline daily cap is 0 to 100000 points.")
OFFLINE_CAP_HINT = _l(
    "0 turns offline redemptions off. A counter that lost the network lets a household redeem "
    "up to the least of this and its balance; a redemption within it is honoured when the "
    "counter syncs, even if the balance has dropped meanwhile."
)
