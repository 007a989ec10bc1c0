"""The store's domain errors: status and code are what the counter API answers."""

from flask_babel import lazy_gettext as _l

from ..errors import DomainError


class CodeUnknown(DomainError):
    """Unknown, expired, used, or another village's pay code: all look the same to a counter,
    so a clerk trying numbers learns nothing from the answer."""

    status = 404
    code = "code_unknown"
    message = _l(
        "This code is not valid: it may be mistyped, expired or used. "
        "Ask for the new code on the phone, or scan the card again."
    )


class TooManyCodes(DomainError):
    status = 429
    code = "too_many_codes"
    message = _l(
        "Too many codes that did not work at this counter. Try again in %(minutes)s minutes; "
        "the village admin can see this."
    )


class CardReplaced(DomainError):
    status = 410
    code = "card_replaced"
    message = _l("This card has been replaced by a new one and no longer works.")


class OtherVillage(DomainError):
    status = 403
    code = "other_village"
    message = _l("This code belongs to a household of another village.")


class NoVenue(DomainError):
    status = 403
    code = "no_venue"
    message = _l("Your account is not bound to a venue. Ask the village admin.")


class WrongPin(DomainError):
    status = 403
    code = "wrong_pin"
    message = _l("The card PIN is wrong.")


class PinLocked(DomainError):
    status = 429
    code = "pin_locked"
    message = _l("Too many wrong PINs for this card. Try again in %(minutes)s minutes.")


class PinRequired(DomainError):
    status = 422
    code = "pin_required"
    message = _l("This village requires the household's 4-digit PIN for a card.")


class PinNotSet(DomainError):
    code = "pin_not_set"
    message = _l("This household has no card PIN yet. The village admin sets it.")


class OutOfStock(DomainError):
    code = "out_of_stock"
    message = _l("Not enough %(item)s in stock: %(stock)s left.")


class MealLimit(DomainError):
    code = "meal_limit"
    message = _l(
        "%(name)s has already had %(count)s %(slot)s meal(s) today; the limit is %(limit)s."
    )


class CardDailyCap(DomainError):
    code = "card_daily_cap"
    message = _l("A card may spend at most %(cap)s points a day; %(spent)s are spent today.")


class AlreadyVoided(DomainError):
    code = "already_voided"
    message = _l("This redemption has already been voided.")


class VoidTooLate(DomainError):
    status = 403
    code = "void_too_late"
    message = _l("A clerk may void only today's redemptions of the own venue. Ask the admin.")


class RequestReused(DomainError):
    status = 409
    code = "request_id_reused"
    message = _l(
        "This request_id was already used for a different redemption. Send a new request_id."
    )
