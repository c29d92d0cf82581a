from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
    URLField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from portal.forms import BaseForm as FlaskForm
from portal.forms import IntegerField, mailable_email
from portal.models import Industry, Product, SizeBand
from portal.services import lists
from portal.services.profiles import (
    MAX_ASKS_MONTH,
    MAX_ASKS_QUARTER,
    MAX_STORY,
    ProfileInput,
    timezone_choices,
)


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def _optional_int(value):
    if value in (None, "", "None"):
        return None
    return int(value)


class ProfileForm(FlaskForm):
    name = StringField("Full name", validators=[DataRequired(), Length(max=120)])
    job_title = StringField("Job title", validators=[DataRequired(), Length(max=160)])
    company = StringField("Company", validators=[DataRequired(), Length(max=160)])
    industry_id = SelectField("Industry", coerce=_optional_int, validators=[Optional()])
    size_band_id = SelectField("Company size", coerce=_optional_int, validators=[Optional()])
    country_code = SelectField(
        "Country", validators=[Optional()], description="Your region is derived from the country."
    )
    product_ids = MultiCheckboxField("Products you use", coerce=int, validators=[Optional()])
    use_cases = StringField(
        "Use cases",
        validators=[Optional(), Length(max=800)],
        description="Separate with commas, e.g. fraud detection, customer onboarding.",
        render_kw={"list": "use-case-suggestions", "autocomplete": "off"},
    )
    topics = StringField(
        "Topics you know well",
        validators=[Optional(), Length(max=800)],
        description="Separate with commas, e.g. zero trust, cloud migration.",
        render_kw={"list": "topic-suggestions", "autocomplete": "off"},
    )
    story = TextAreaField(
        "Your story and outcomes",
        validators=[Optional(), Length(max=MAX_STORY)],
        description="Plain text; leave an empty line between paragraphs. What did you achieve?",
        render_kw={"rows": 8},
    )
    linkedin_url = URLField(
        "LinkedIn profile", validators=[Optional(), Length(max=255)], description="https://www.linkedin.com/in/…"
    )
    # No "community directory" switch: there is no directory, and a setting that does nothing is not shown.
    # (AdvocateProfile.show_in_directory keeps its value for the day one opens; a save leaves it as it is.)
    show_on_leaderboard = BooleanField("Show me on leaderboards")
    submit = SubmitField("Save profile")


def fill_profile_choices(form: ProfileForm, session, profile=None) -> None:
    """The lists the profile form chooses from: the program's active items, and the retired ones the
    profile already has (it keeps them and still saves); the advocate's own edit and an admin's edit of it."""

    def choices(model, blank: str, keep):
        return [(None, blank)] + [(item.id, item.name) for item in lists.offered(session, model, keep)]

    form.industry_id.choices = choices(Industry, "Choose an industry", [profile.industry_id] if profile else [])
    form.size_band_id.choices = choices(SizeBand, "Choose a size", [profile.size_band_id] if profile else [])
    form.country_code.choices = [("", "Choose a country")] + [(c.code, c.name) for c in lists.countries(session)]
    had = [p.id for p in profile.products] if profile else []
    form.product_ids.choices = [(p.id, p.name) for p in lists.offered(session, Product, had)]


def profile_form_data(user, profile) -> dict:
    """The profile form's fields as saved (the form's ``data=``)."""
    return {
        "name": user.name,
        "job_title": user.job_title,
        "company": user.company,
        "industry_id": profile.industry_id,
        "size_band_id": profile.size_band_id,
        "country_code": profile.country_code or "",
        "product_ids": [p.id for p in profile.products],
        "use_cases": ", ".join(t.name for t in profile.use_cases),
        "topics": ", ".join(t.name for t in profile.topics),
        "story": profile.story,
        "linkedin_url": profile.linkedin_url or "",
        "show_on_leaderboard": profile.show_on_leaderboard,
    }


def profile_input(form: ProfileForm) -> ProfileInput:
    """What a validated profile form asks to save, for profiles.update_profile / edit_for_admin."""
    return ProfileInput(
        name=form.name.data,
        job_title=form.job_title.data,
        company=form.company.data,
        industry_id=form.industry_id.data,
        size_band_id=form.size_band_id.data,
        country_code=form.country_code.data or None,
        product_ids=form.product_ids.data or [],
        use_cases=form.use_cases.data or "",
        topics=form.topics.data or "",
        story=form.story.data or "",
        linkedin_url=form.linkedin_url.data or "",
        show_on_leaderboard=form.show_on_leaderboard.data,
    )


class CommunicationForm(FlaskForm):
    digest = SelectField("Opportunity digest", choices=[("off", "Off"), ("weekly", "Weekly"), ("monthly", "Monthly")])
    notify_opportunities = BooleanField("Tell me about new opportunities that match me")
    notify_reminders = BooleanField("Remind me when my profile may be out of date")
    notify_news = BooleanField("Program news and recognition (badges you earn)")
    submit = SubmitField("Save email settings")


class LimitsForm(FlaskForm):
    max_asks_per_month = IntegerField(
        "At most this many asks per month",
        validators=[Optional(), NumberRange(0, MAX_ASKS_MONTH)],
        description="Leave empty for no limit of your own.",
    )
    max_asks_per_quarter = IntegerField(
        "At most this many asks per quarter",
        validators=[Optional(), NumberRange(0, MAX_ASKS_QUARTER)],
        description="Leave empty for no limit of your own.",
    )
    paused_until = DateField(
        "Pause all asks until", validators=[Optional()], description="Leave empty when you are not pausing."
    )
    timezone = SelectField("Time zone", choices=[], validate_choice=True)
    submit = SubmitField("Save availability")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.timezone.choices = list(timezone_choices())


class BlackoutForm(FlaskForm):
    starts_on = DateField("First day", validators=[InputRequired("Give the first day.")])
    ends_on = DateField("Last day", validators=[InputRequired("Give the last day.")])
    note = StringField(
        "Note (optional)", validators=[Optional(), Length(max=200)], description="e.g. parental leave, product launch"
    )
    submit = SubmitField("Add blackout")


class ConfirmDeletionForm(FlaskForm):
    """The deletion of an account without a password, confirmed from the emailed link."""

    confirm = BooleanField(
        "I understand my profile and personal data will be erased and cannot be restored.",
        validators=[DataRequired("Tick the box to confirm.")],
    )
    submit = SubmitField("Delete my account")


class DeleteAccountForm(FlaskForm):
    password = PasswordField(
        "Your password", validators=[InputRequired(), Length(max=1024)], render_kw={"autocomplete": "current-password"}
    )
    confirm = BooleanField(
        "I understand my profile and personal data will be erased and cannot be restored.",
        validators=[DataRequired("Tick the box to confirm.")],
    )
    submit = SubmitField("Delete my account")


class ChangeEmailByLinkForm(FlaskForm):
    """An account without a password: its current address confirms the change (privacy.request_email_change_by_link)."""

    new_email = EmailField("New email address", validators=[DataRequired(), *mailable_email(), Length(max=254)])
    submit = SubmitField("Send confirmation link")


class ChangeEmailForm(ChangeEmailByLinkForm):
    password = PasswordField(
        "Your password", validators=[InputRequired(), Length(max=1024)], render_kw={"autocomplete": "current-password"}
    )
