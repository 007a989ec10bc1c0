from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, IntegerField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, Regexp

# SelectChoice, not tuples: WTForms 3.3 deprecates tuples (an error under our warning filter).
KINDS = [
    SelectChoice("supermarket", _l("Love supermarket")),
    SelectChoice("canteen", _l("Happiness canteen")),
]
SLOT_CHOICES = [
    SelectChoice("", _l("(goods, not a meal)")),
    SelectChoice("breakfast", _l("Breakfast")),
    SelectChoice("lunch", _l("Lunch")),
    SelectChoice("dinner", _l("Dinner")),
]


class VenueForm(FlaskForm):
    kind = SelectField(_l("Kind"), choices=KINDS)
    name = StringField(
        _l("Venue name"), validators=[DataRequired(_l("A name is required.")), Length(max=60)]
    )
    hours = StringField(_l("Opening hours"), validators=[Optional(), Length(max=120)])


class ItemForm(FlaskForm):
    name = StringField(
        _l("Item name"), validators=[DataRequired(_l("A name is required.")), Length(max=60)]
    )
    points = IntegerField(
        _l("Points"),
        validators=[InputRequired(_l("Give the price in points.")), NumberRange(0, 100_000)],
    )
    unit = StringField(_l("Unit"), validators=[Optional(), Length(max=10)])
    stock = IntegerField(_l("Opening stock"), validators=[Optional(), NumberRange(0, 100_000)])
    low_stock = IntegerField(
        _l("Warn when stock is at or below"), default=5, validators=[NumberRange(0, 100_000)]
    )
    slot = SelectField(_l("Meal slot"), choices=SLOT_CHOICES, validate_choice=True)
    daily_limit = IntegerField(
        _l("Meals per resident per slot per day"),
        default=1,
        validators=[Optional(), NumberRange(1, 10)],
    )
    active = BooleanField(_l("On sale"), default=True)
    photo = FileField(_l("Photo (optional)"))


class IntakeForm(FlaskForm):
    qty = IntegerField(
        _l("Quantity taken in"),
        validators=[InputRequired(_l("Give a quantity.")), NumberRange(1, 100_000)],
    )
    donor = StringField(_l("Donor (for a donation)"), validators=[Optional(), Length(max=60)])
    reason = StringField(_l("Note"), validators=[Optional(), Length(max=200)])


class CorrectionForm(FlaskForm):
    counted = IntegerField(
        _l("Counted stock"),
        validators=[InputRequired(_l("Give the counted stock.")), NumberRange(0, 1_000_000)],
    )
    reason = StringField(
        _l("Why"), validators=[DataRequired(_l("Say why the stock is corrected.")), Length(max=200)]
    )


class GiftForm(FlaskForm):
    household = StringField(
        _l("Household number"),
        validators=[DataRequired(_l("Give the giver's household number.")), Length(max=20)],
    )
    description = StringField(
        _l("What was given"),
        validators=[DataRequired(_l("Say what was given.")), Length(max=120)],
    )
    points = IntegerField(
        _l("Points"), validators=[InputRequired(_l("Give the points.")), NumberRange(1, 10_000)]
    )


class ClerkForm(FlaskForm):
    user_id = SelectField(_l("Clerk"), coerce=int, choices=[])


class PinForm(FlaskForm):
    pin = StringField(
        _l("New 4-digit PIN (empty to remove it)"),
        validators=[Optional(), Regexp(r"^[0-9]{4}$", message=_l("The PIN is 4 digits."))],
    )
