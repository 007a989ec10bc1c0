from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import IntegerField, PasswordField, StringField
from wtforms.validators import DataRequired, Length, NumberRange, Optional, Regexp

from ..auth.forms import new_password_validators
from ..text import ascii_digits
from .rules import NUMBER_RE, PHONE_RE

PHONE = Regexp(PHONE_RE, message=_l("Enter an 11-digit mobile number."))


# Phone keyboards add a space after a word and people write phones as 138 0000 0001: the import
# accepts both (rules.clean_*), so the forms take them too instead of refusing the shape.
def strip(value):
    return value.strip() if isinstance(value, str) else value


def no_spaces(value):
    # Also full-width digits and dashes (139-7123-0049), as the import takes them.
    return ascii_digits(value) if isinstance(value, str) else value


class HouseholdForm(FlaskForm):
    number = StringField(
        _l("Household number"),
        filters=[strip],
        validators=[
            DataRequired(_l("Household number is required.")),
            Regexp(
                NUMBER_RE,
                message=_l("The household number uses digits, letters or - (at most 20)."),
            ),
        ],
    )
    head_name = StringField(
        _l("Head of household"),
        filters=[strip],
        validators=[DataRequired(_l("Head of household is required.")), Length(max=50)],
    )
    group_name = StringField(_l("Group"), filters=[strip], validators=[Optional(), Length(max=50)])
    address = StringField(_l("Address"), filters=[strip], validators=[Optional(), Length(max=200)])


class NewHouseholdForm(HouseholdForm):
    head_phone = StringField(
        _l("Head's phone"), filters=[no_spaces], validators=[Optional(), PHONE]
    )
    head_birth_year = IntegerField(
        _l("Head's birth year"),
        validators=[Optional(), NumberRange(1900, 2100, _l("Enter a year such as 1958."))],
    )
    opening_balance = IntegerField(
        _l("Opening balance (from the paper ledger)"),
        validators=[
            Optional(),
            NumberRange(-1_000_000, 1_000_000, _l("Enter a whole number of points.")),
        ],
    )


class ResidentForm(FlaskForm):
    name = StringField(
        _l("Name"),
        filters=[strip],
        validators=[DataRequired(_l("Name is required.")), Length(max=50)],
    )
    phone = StringField(_l("Phone"), filters=[no_spaces], validators=[Optional(), PHONE])
    birth_year = IntegerField(
        _l("Birth year"),
        validators=[Optional(), NumberRange(1900, 2100, _l("Enter a year such as 1958."))],
    )


class LoginForResidentForm(FlaskForm):
    password = PasswordField(
        _l("Password"),
        validators=new_password_validators(),
    )


class ImportForm(FlaskForm):
    file = FileField(_l("File (.csv or .xlsx)"), validators=[FileRequired(_l("Choose a file."))])
