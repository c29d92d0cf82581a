"""The sign-up form of an invitation: the registration form's fields and rules, without the email
(the invitation's address, which the link proves)."""

from wtforms import SubmitField

from portal.forms.auth import RegisterForm


class InvitedForm(RegisterForm):
    email = None  # fixed: the address the invitation was sent to
    submit = SubmitField("Join the program")
