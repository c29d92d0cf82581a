from wtforms import BooleanField, EmailField, PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, EqualTo, InputRequired, Length

from portal.forms import BaseForm as FlaskForm
from portal.forms import mailable_email

PASSWORD_HELP = "At least 10 characters. A few unrelated words make a strong, memorable password."


class RegisterForm(FlaskForm):
    name = StringField("Full name", validators=[DataRequired(), Length(max=120)], render_kw={"autocomplete": "name"})
    email = EmailField(
        "Work email",
        validators=[DataRequired(), *mailable_email(), Length(max=254)],
        render_kw={"autocomplete": "email"},
    )
    company = StringField(
        "Company", validators=[DataRequired(), Length(max=160)], render_kw={"autocomplete": "organization"}
    )
    job_title = StringField(
        "Job title", validators=[DataRequired(), Length(max=160)], render_kw={"autocomplete": "organization-title"}
    )
    password = PasswordField(
        "Password",
        validators=[InputRequired(), Length(max=128)],
        description=PASSWORD_HELP,
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        "Repeat the password",
        validators=[InputRequired(), EqualTo("password", "The passwords do not match.")],
        render_kw={"autocomplete": "new-password"},
    )
    accept_terms = BooleanField(
        "I accept the program terms and agree that the program team may contact me about advocacy opportunities.",
        validators=[DataRequired("Please accept the program terms to join.")],
    )
    submit = SubmitField("Join the program")


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)], render_kw={"autocomplete": "username"})
    password = PasswordField(
        "Password", validators=[InputRequired(), Length(max=1024)], render_kw={"autocomplete": "current-password"}
    )
    remember = BooleanField("Keep me signed in on this device")
    submit = SubmitField("Sign in")


class ForgotPasswordForm(FlaskForm):
    email = EmailField(
        "Email", validators=[DataRequired(), *mailable_email(), Length(max=254)], render_kw={"autocomplete": "email"}
    )
    submit = SubmitField("Send me a reset link")


class ResetPasswordForm(FlaskForm):
    password = PasswordField(
        "New password",
        validators=[InputRequired(), Length(max=128)],
        description=PASSWORD_HELP,
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        "Repeat the new password",
        validators=[InputRequired(), EqualTo("password", "The passwords do not match.")],
        render_kw={"autocomplete": "new-password"},
    )
    submit = SubmitField("Set new password")


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(
        "Current password",
        validators=[InputRequired(), Length(max=1024)],
        render_kw={"autocomplete": "current-password"},
    )
    password = PasswordField(
        "New password",
        validators=[InputRequired(), Length(max=128)],
        description=PASSWORD_HELP,
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        "Repeat the new password",
        validators=[InputRequired(), EqualTo("password", "The passwords do not match.")],
        render_kw={"autocomplete": "new-password"},
    )
    submit = SubmitField("Change password")


class ConfirmForm(FlaskForm):
    """A bare form for POST-only buttons (logout, resend): CSRF and nothing else."""

    submit = SubmitField("Confirm")
