from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional, Regexp

from .services import MIN_PASSWORD


def new_password_validators() -> list:
    """The shape of a new password, shared by every form that sets one."""
    return [
        DataRequired(_l("A password is required.")),
        Length(
            min=MIN_PASSWORD,
            max=200,
            message=_l("The password needs at least %(n)s characters.", n=MIN_PASSWORD),
        ),
    ]


class LoginForm(FlaskForm):
    username = StringField(
        _l("Username or phone"),
        validators=[DataRequired(_l("Enter your username or phone.")), Length(max=40)],
    )
    password = PasswordField(
        _l("Password"), validators=[DataRequired(_l("Enter your password.")), Length(max=200)]
    )


# SelectChoice, not (value, label) tuples: WTForms 3.3 deprecates tuples and 3.4 drops them.
STAFF_ROLES = [
    SelectChoice("village_admin", _l("Village admin")),
    SelectChoice("scorer", _l("Scorer")),
    SelectChoice("clerk", _l("Clerk")),
]


class UserForm(FlaskForm):
    username = StringField(
        _l("Username"),
        validators=[
            DataRequired(_l("A username is required.")),
            Length(max=40),
            Regexp(r"^[A-Za-z0-9_.@-]+$", message=_l("Use letters, digits and . _ @ - only.")),
        ],
    )
    display_name = StringField(_l("Name"), validators=[Optional(), Length(max=50)])
    role = SelectField(_l("Role"), choices=STAFF_ROLES)
    password = PasswordField(
        _l("Password"),
        validators=new_password_validators(),
    )


class ResetPasswordForm(FlaskForm):
    password = PasswordField(
        _l("New password"),
        validators=new_password_validators(),
    )


class ChangePasswordForm(FlaskForm):
    current = PasswordField(
        _l("Current password"),
        validators=[DataRequired(_l("Enter your current password.")), Length(max=200)],
    )
    password = PasswordField(_l("New password"), validators=new_password_validators())
