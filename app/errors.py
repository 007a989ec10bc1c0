"""Domain errors. Services raise them; views turn them into a message or a 4xx."""

from flask_babel import lazy_gettext as _l

# Ids are INTEGER columns, 32 bits on PostgreSQL: a larger id is refused (422) or not found (404)
# before any query, never a database overflow.
MAX_ID = 2**31 - 1


class DomainError(Exception):
    """A rule said no. `message` is shown to the user in their language."""

    status = 409
    code = "conflict"
    message = _l("This cannot be done.")

    def __init__(self, message=None, **params):
        self.params = params
        if message is not None:
            self.message = message
        super().__init__(str(self.message))

    def __str__(self) -> str:
        text = str(self.message)
        return text % self.params if self.params else text


class NotFound(DomainError):
    status = 404
    code = "not_found"
    message = _l("Not found.")


class Forbidden(DomainError):
    status = 403
    code = "forbidden"
    message = _l("You may not do this.")


class InvalidInput(DomainError):
    status = 422
    code = "invalid"
    message = _l("The input is not valid.")


class InsufficientPoints(DomainError):
    code = "insufficient_points"
    message = _l("Not enough points: the balance is %(balance)s, %(needed)s are needed.")


class AlreadyReversed(DomainError):
    code = "already_reversed"
    message = _l("This entry has already been reversed.")


class HouseholdArchived(DomainError):
    code = "household_archived"
    message = _l("This household is archived.")
