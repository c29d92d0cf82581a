"""Reference requests: the request form (staff), the ask and the requester's actions, the advocate's answer."""

from wtforms import DateField, DateTimeLocalField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from portal.forms import BaseForm as FlaskForm
from portal.forms import IntegerField
from portal.forms.profile import MultiCheckboxField
from portal.services.profiles import timezone_choices
from portal.services.references import CURRENCIES


class ReferenceRequestForm(FlaskForm):
    activity_type_id = SelectField("What you need", coerce=int, validators=[DataRequired()])
    account_name = StringField("Account or deal name", validators=[DataRequired(), Length(max=160)])
    crm_opportunity_id = StringField("CRM opportunity id (optional)", validators=[Optional(), Length(max=64)])
    deal_amount = IntegerField("Deal amount (optional)", validators=[Optional(), NumberRange(0, 10**12)])
    currency = SelectField("Currency", choices=[(c, c) for c in CURRENCIES], default="USD")
    due_date = DateField("Needed by", validators=[DataRequired()])
    advocates_needed = IntegerField("How many advocates", default=1, validators=[DataRequired(), NumberRange(1, 20)])
    industry_id = SelectField("Industry", coerce=int, validators=[Optional()])
    product_id = SelectField("Product", coerce=int, validators=[Optional()])
    region_id = SelectField("Region", coerce=int, validators=[Optional()])
    size_band_id = SelectField("Company size", coerce=int, validators=[Optional()])
    topic_ids = MultiCheckboxField("Topics", coerce=int, validators=[Optional()])
    need = TextAreaField(
        "Anything else the advocate should bring", validators=[Optional(), Length(max=4000)], render_kw={"rows": 4}
    )
    submit = SubmitField("Request a reference")


class AskForm(FlaskForm):
    """Ask one advocate: by id (a matching candidate's row) or by email address (the admin's fallback)."""

    advocate_id = IntegerField("Advocate id", validators=[Optional(), NumberRange(1, 2**31 - 1)])
    email = StringField("Advocate's email address", validators=[Optional(), Length(max=254)])
    override_reason = StringField(
        "Override reason (admins only: to ask an advocate the rules leave out)",
        validators=[Optional(), Length(max=500)],
    )
    submit = SubmitField("Ask")


class ScheduleForm(FlaskForm):
    when = DateTimeLocalField("When it happens", format="%Y-%m-%dT%H:%M", validators=[DataRequired()])
    timezone = SelectField(
        "Time zone of that time",
        choices=[],
        default="UTC",
        validate_choice=True,
        description="Each advocate is told the time in their own time zone.",
    )
    submit = SubmitField("Schedule")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.timezone.choices = list(timezone_choices())


class OutcomeForm(FlaskForm):
    outcome = SelectField(
        "Outcome", choices=[("won", "Won"), ("lost", "Lost"), ("still_open", "Still open")], validators=[DataRequired()]
    )
    final_amount = IntegerField("Final amount (optional)", validators=[Optional(), NumberRange(0, 10**12)])
    submit = SubmitField("Save the outcome")


class CancelForm(FlaskForm):
    reason = StringField("Why (optional)", validators=[Optional(), Length(max=1000)])
    submit = SubmitField("Cancel the request")


class AnswerForm(FlaskForm):
    reason = StringField("Reason (optional)", validators=[Optional(), Length(max=500)])
    submit = SubmitField("Decline")


class NoteForm(FlaskForm):
    note = TextAreaField("How did it go? (optional)", validators=[Optional(), Length(max=1000)], render_kw={"rows": 3})
    submit = SubmitField("Save my note")
