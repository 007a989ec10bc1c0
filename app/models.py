"""Imports every model so that metadata (create_all, Alembic) sees all tables."""

from .auth.models import LoginThrottle, User, UserSession  # noqa: F401
from .certificates.models import Certificate  # noqa: F401
from .households.models import Household, ImportBatch, Resident  # noqa: F401
from .ledger.models import HouseholdYear, LedgerEntry  # noqa: F401
from .offline.models import OfflineConflict  # noqa: F401
from .scoring.models import (  # noqa: F401
    ChainHead,
    Decision,
    Meeting,
    NoticeItem,
    Objection,
    Proposal,
    ProposalHousehold,
    Rule,
)
from .scoring.photos import Photo  # noqa: F401
from .store.models import (  # noqa: F401
    Gift,
    Item,
    PayCode,
    Redemption,
    RedemptionLine,
    StockMove,
    Venue,
)
from .villages.models import AuditLog, Village  # noqa: F401
