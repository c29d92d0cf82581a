"""Forms of single sign-on: a new advocate's terms (with what the provider said, to correct) and the
password that proves an existing account is one's own."""

from wtforms import BooleanField, PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, InputRequired, Length

from portal.forms import BaseForm as FlaskForm


class SsoJoinForm(FlaskForm):
    name = StringField("Full name", validators=[DataRequired(), Length(max=120)], render_kw={"autocomplete": "name"})
    company = StringField(
        "Company", validators=[DataRequired(), Length(max=160)], render_kw={"autocomplete": "organization"}
    )
    job_title = StringField(
        "Job title", validators=[DataRequired(), Length(max=160)], render_kw={"autocomplete": "organization-title"}
    )
    accept_terms = BooleanField(
        "I accept the program terms and agree that the program team may contact me about advocacy opportunities.",
        validators=[DataRequired("Please accept the program terms to join.")],
    )
    submit = SubmitField("Join the program")


class SsoLinkForm(FlaskForm):
    password = PasswordField(
        "Your portal password",
        validators=[InputRequired(), Length(max=1024)],
        render_kw={"autocomplete": "current-password"},
    )
    submit = SubmitField("Link and sign in")
