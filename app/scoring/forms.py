"""Scoring forms: they check shape; the services check the rules."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    DateField,
    IntegerField,
    RadioField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from .rules import CAP_PERIODS, CATEGORIES, MAX_RULE_POINTS, OUTCOMES

DATE_MSG = _l("Enter a date such as 2026-05-01.")
CHOICE_MSG = _l("Choose one of the listed options.")
NUMBER_MSG = _l("Enter a whole number.")


def choices(pairs) -> list[SelectChoice]:
    """SelectChoice, not (value, label) tuples: WTForms 3.3 deprecates tuples."""
    return [SelectChoice(value, label) for value, label in pairs]


class RuleForm(FlaskForm):
    category = SelectField(
        _l("Category"),
        invalid_choice_message=CHOICE_MSG,
        choices=choices(CATEGORIES.items()),
        validators=[DataRequired()],
    )
    title = StringField(
        _l("Title"), validators=[DataRequired(_l("Title is required.")), Length(max=100)]
    )
    points = IntegerField(
        _l("Points (negative for a deduction)"),
        invalid_value_message=NUMBER_MSG,
        validators=[
            InputRequired(_l("Enter the points.")),
            NumberRange(-MAX_RULE_POINTS, MAX_RULE_POINTS, _l("Enter a whole number of points.")),
        ],
    )
    cap_count = IntegerField(
        _l("Cap: at most this many times"),
        invalid_value_message=NUMBER_MSG,
        validators=[Optional(), NumberRange(1, 1000, _l("Enter 1 to 1000."))],
    )
    cap_period = SelectField(
        _l("Cap period"),
        invalid_choice_message=CHOICE_MSG,
        choices=choices([("", _l("no cap")), *CAP_PERIODS.items()]),
        default="",
    )
    active = BooleanField(_l("In use"), default=True)


class _ProposalFields(FlaskForm):
    rule_id = SelectField(
        _l("Rule"),
        invalid_choice_message=CHOICE_MSG,
        coerce=int,
        validators=[InputRequired(_l("Choose a rule."))],
        choices=[],
    )
    occurred_on = DateField(
        _l("Date"), invalid_value_message=DATE_MSG, validators=[InputRequired(DATE_MSG)]
    )
    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=500)])
    photo = FileField(_l("Photo (optional)"))


class ProposalForm(_ProposalFields):
    resident_id = SelectField(
        _l("Resident (optional)"),
        invalid_choice_message=CHOICE_MSG,
        coerce=int,
        choices=[],
        default=0,
    )


class BatchProposalForm(_ProposalFields):
    household_ids = SelectMultipleField(
        _l("Households"),
        invalid_choice_message=CHOICE_MSG,
        coerce=int,
        choices=[],
        validators=[DataRequired(_l("Tick at least one household."))],
    )


def _int_or_none(value):
    return None if value in ("", None) else int(value)


class ClaimForm(_ProposalFields):
    # Starts with no rule chosen (the empty first choice), which is refused: an untouched form
    # must not claim whatever rule happens to come first.
    rule_id = SelectField(
        _l("Rule"),
        invalid_choice_message=CHOICE_MSG,
        coerce=_int_or_none,
        validators=[InputRequired(_l("Choose a rule."))],
        choices=[],
    )


class MeetingForm(FlaskForm):
    held_on = DateField(
        _l("Date"), invalid_value_message=DATE_MSG, validators=[InputRequired(DATE_MSG)]
    )
    title = StringField(
        _l("Title"), validators=[DataRequired(_l("Title is required.")), Length(max=100)]
    )
    attendees = TextAreaField(_l("Attendees"), validators=[Optional(), Length(max=2000)])


class NewMeetingForm(MeetingForm):
    add_pending = BooleanField(_l("Put every waiting proposal on the agenda"), default=True)


class DecisionForm(FlaskForm):
    outcome = RadioField(
        _l("Decision"),
        invalid_choice_message=CHOICE_MSG,
        choices=choices(OUTCOMES.items()),
        validators=[InputRequired(_l("Choose approve, reject or defer."))],
    )
    points = IntegerField(
        _l("Points per household"),
        invalid_value_message=NUMBER_MSG,
        validators=[
            Optional(),
            NumberRange(-MAX_RULE_POINTS, MAX_RULE_POINTS, _l("Enter a whole number of points.")),
        ],
    )
    reason = StringField(_l("Reason"), validators=[Optional(), Length(max=300)])
    votes_for = IntegerField(
        _l("For"),
        invalid_value_message=NUMBER_MSG,
        validators=[Optional(), NumberRange(0, 10000, _l("Enter 0 or more."))],
    )
    votes_against = IntegerField(
        _l("Against"),
        invalid_value_message=NUMBER_MSG,
        validators=[Optional(), NumberRange(0, 10000, _l("Enter 0 or more."))],
    )


class ObjectionForm(FlaskForm):
    reason = TextAreaField(
        _l("Why do you object?"),
        validators=[DataRequired(_l("A reason is required.")), Length(max=500)],
    )


class ResolveForm(FlaskForm):
    decision = RadioField(
        _l("Outcome"),
        invalid_choice_message=CHOICE_MSG,
        choices=choices([("uphold", _l("Uphold: cancel the item")), ("dismiss", _l("Dismiss"))]),
        validators=[InputRequired(_l("Choose uphold or dismiss."))],
    )
    resolution = StringField(
        _l("Reply to the villager"),
        validators=[DataRequired(_l("A reply is required.")), Length(max=300)],
    )


class AdjustForm(FlaskForm):
    household = StringField(
        _l("Household number"),
        validators=[DataRequired(_l("Household number is required.")), Length(max=20)],
    )
    points = IntegerField(
        _l("Points (negative to take away)"),
        invalid_value_message=NUMBER_MSG,
        validators=[
            InputRequired(_l("Enter the points.")),
            NumberRange(-1_000_000, 1_000_000, _l("Enter a whole number of points.")),
        ],
    )
    reason = StringField(
        _l("Reason"), validators=[DataRequired(_l("A reason is required.")), Length(max=300)]
    )
