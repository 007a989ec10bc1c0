"""Households and residents of one village. Balances are not written here: see ledger.services."""

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from ..audit import record
from ..auth.models import User
from ..auth.services import create_user
from ..database import transaction
from ..errors import InvalidInput, NotFound
from ..extensions import db
from ..ledger import services as ledger
from . import rules
from .models import Household, Resident


@dataclass
class HouseholdData:
    number: str
    head_name: str
    group_name: str = ""
    address: str = ""
    head_phone: str | None = None
    contact_phone: str = ""
    head_birth_year: int | None = None
    opening_balance: int = 0

    @classmethod
    def clean(cls, **raw) -> "HouseholdData":
        """Raises InvalidInput naming the first field that is wrong."""
        return cls(
            number=rules.clean_number(raw.get("number")),
            head_name=rules.clean_text(
                raw.get("head_name"), _l("Head of household"), required=True, max_len=50
            ),
            group_name=rules.clean_text(
                raw.get("group_name"), _l("Group"), required=False, max_len=50
            ),
            address=rules.clean_text(
                raw.get("address"), _l("Address"), required=False, max_len=200
            ),
            head_phone=rules.clean_phone(raw.get("head_phone")),
            head_birth_year=rules.clean_birth_year(raw.get("head_birth_year")),
            opening_balance=rules.clean_points(raw.get("opening_balance")),
        )


def _get(village_id: int, household_id: int) -> Household:
    household = db.session.get(Household, household_id)
    if household is None or household.village_id != village_id:
        raise NotFound()
    return household


def _number_taken(village_id: int, number: str, except_id: int | None = None) -> bool:
    q = select(Household.id).where(Household.village_id == village_id, Household.number == number)
    if except_id:
        q = q.where(Household.id != except_id)
    return db.session.scalar(q) is not None


def _phone_taken(village_id: int, phone: str, except_id: int | None = None) -> bool:
    q = select(Resident.id).where(Resident.village_id == village_id, Resident.phone == phone)
    if except_id:
        q = q.where(Resident.id != except_id)
    return db.session.scalar(q) is not None


def _lock_village(village_id: int) -> None:
    # Two admins saving at once would both pass the number and phone checks on PostgreSQL (each
    # reads before the other commits): take the village's lock first, so they run one at a time.
    ledger.lock_village(village_id)


def create_household(village_id: int, data: HouseholdData, actor_id: int | None) -> Household:
    """A household with its head as the first resident; an opening balance if given."""
    with transaction():
        _lock_village(village_id)
        if _number_taken(village_id, data.number):
            raise InvalidInput(
                _l("Household number %(number)s already exists."), number=data.number
            )
        if data.head_phone and _phone_taken(village_id, data.head_phone):
            raise InvalidInput(
                _l("The phone %(phone)s belongs to another resident."), phone=data.head_phone
            )
        household = Household(
            village_id=village_id,
            number=data.number,
            head_name=data.head_name,
            group_name=data.group_name,
            address=data.address,
            contact_phone=data.contact_phone,
        )
        db.session.add(household)
        db.session.flush()
        db.session.add(
            Resident(
                village_id=village_id,
                household_id=household.id,
                name=data.head_name,
                phone=data.head_phone,
                birth_year=data.head_birth_year,
            )
        )
        if data.opening_balance:
            ledger.open_balance(village_id, household.id, data.opening_balance, actor_id)
        record(village_id, actor_id, "household.create", f"household:{household.id}", data.number)
        return household


def update_household(
    village_id: int, household_id: int, data: HouseholdData, actor_id: int
) -> Household:
    with transaction():
        _lock_village(village_id)
        household = _get(village_id, household_id)
        if _number_taken(village_id, data.number, household.id):
            raise InvalidInput(
                _l("Household number %(number)s already exists."), number=data.number
            )
        for name in ("number", "head_name", "group_name", "address"):
            setattr(household, name, getattr(data, name))
        record(village_id, actor_id, "household.update", f"household:{household.id}", data.number)
        return household


def set_status(village_id: int, household_id: int, status: str, actor_id: int) -> None:
    """Archive (or restore) a household: it keeps its history, stops redeeming."""
    if status not in ("active", "archived"):
        raise InvalidInput()
    with transaction():
        household = _get(village_id, household_id)
        household.status = status
        record(village_id, actor_id, f"household.{status}", f"household:{household.id}")


def save_resident(
    village_id: int,
    household_id: int,
    *,
    name: str,
    phone: str | None,
    birth_year: int | None,
    actor_id: int,
    resident_id: int | None = None,
) -> Resident:
    """Add a resident to a household, or edit one (resident_id)."""
    name = rules.clean_text(name, _l("Name"), required=True, max_len=50)
    phone = rules.clean_phone(phone)
    birth_year = rules.clean_birth_year(birth_year)
    with transaction():
        _lock_village(village_id)
        household = _get(village_id, household_id)
        if phone and _phone_taken(village_id, phone, resident_id):
            raise InvalidInput(_l("The phone %(phone)s belongs to another resident."), phone=phone)
        if resident_id is None:
            resident = Resident(village_id=village_id, household_id=household.id)
            db.session.add(resident)
        else:
            resident = db.session.get(Resident, resident_id)
            if resident is None or resident.household_id != household.id:
                raise NotFound()
            login = db.session.scalar(select(User).where(User.resident_id == resident.id))
            if login is not None and phone != resident.phone:
                if phone is None:
                    raise InvalidInput(_l("This resident signs in with the phone; keep one."))
                if db.session.scalar(select(User.id).where(User.username == phone)):
                    raise InvalidInput(_l("The username %(name)s is already taken."), name=phone)
                login.username = phone
        resident.name, resident.phone, resident.birth_year = name, phone, birth_year
        db.session.flush()
        record(village_id, actor_id, "resident.save", f"resident:{resident.id}", name)
        return resident


def give_login(village_id: int, resident_id: int, password: str, actor_id: int) -> User:
    """A villager login for a resident: the username is the resident's phone."""
    with transaction():
        _lock_village(village_id)
        resident = db.session.get(Resident, resident_id)
        if resident is None or resident.village_id != village_id:
            raise NotFound()
        if not resident.phone:
            raise InvalidInput(_l("Add the resident's phone first: it is the username."))
        if db.session.scalar(select(User.id).where(User.resident_id == resident.id)):
            raise InvalidInput(_l("This resident already has a login."))
        return create_user(
            village_id=village_id,
            role="villager",
            username=resident.phone,
            password=password,
            display_name=resident.name,
            resident_id=resident.id,
            actor_id=actor_id,
        )
