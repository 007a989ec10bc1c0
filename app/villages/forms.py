from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, PasswordField, StringField
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
)

from .settings import OFFLINE_CAP_MAX, OFFLINE_CAP_RANGE, SETTINGS


class SettingsForm(FlaskForm):
    notice_days = IntegerField(
        SETTINGS["notice_days"][0],
        validators=[
            InputRequired(_l("Enter a number of days.")),
            NumberRange(1, 60, _l("The notice period is 1 to 60 days.")),
        ],
    )
    star_thresholds = StringField(
        SETTINGS["star_thresholds"][0],
        validators=[DataRequired(_l("Enter the thresholds.")), Length(max=100)],
    )
    card_pin_required = BooleanField(SETTINGS["card_pin_required"][0])
    card_daily_cap = IntegerField(
        SETTINGS["card_daily_cap"][0],
        validators=[
            InputRequired(_l("Enter a number of points.")),
            NumberRange(0, 1_000_000, _l("The card's daily cap is 0 to 1000000 points.")),
        ],
    )
    # Optional: a form without it (an older page still open) leaves the setting as it is.
    offline_daily_cap = IntegerField(
        SETTINGS["offline_daily_cap"][0],
        validators=[Optional(), NumberRange(0, OFFLINE_CAP_MAX, OFFLINE_CAP_RANGE)],
    )
    meal_age_tiers = StringField(SETTINGS["meal_age_tiers"][0], validators=[Length(max=200)])
    gifts_earn_points = BooleanField(SETTINGS["gifts_earn_points"][0])
    notice_show_names = BooleanField(SETTINGS["notice_show_names"][0])
    notice_public_days = IntegerField(
        SETTINGS["notice_public_days"][0],
        validators=[
            InputRequired(_l("Enter a number of days.")),
            NumberRange(0, 365, _l("A decision stays public 0 to 365 days after its notice.")),
        ],
    )


class VillageForm(FlaskForm):
    name = StringField(
        _l("Village name"),
        validators=[DataRequired(_l("A village name is required.")), Length(max=100)],
    )
    code = StringField(
        _l("Village code (used in addresses)"),
        validators=[
            DataRequired(_l("A village code is required.")),
            Regexp(
                r"^[a-z0-9][a-z0-9-]{1,39}$",
                message=_l("The village code uses 2 to 40 lowercase letters, digits or -."),
            ),
        ],
    )
    admin_username = StringField(
        _l("First admin's username"),
        validators=[DataRequired(_l("A username is required.")), Length(max=40)],
    )
    admin_password = PasswordField(
        _l("First admin's password"),
        validators=[DataRequired(_l("A password is required.")), Length(max=200)],
    )
