from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    RadioField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
    URLField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from portal.forms import BaseForm as FlaskForm
from portal.forms import IntegerField
from portal.forms.profile import MultiCheckboxField


class RequestForm(FlaskForm):
    message = TextAreaField(
        "Message to the program team (optional)", validators=[Optional(), Length(max=1000)], render_kw={"rows": 3}
    )
    submit = SubmitField("I'm in")


class OpportunityForm(FlaskForm):
    activity_type_id = SelectField("Activity type", coerce=int, validators=[DataRequired()])
    title = StringField("Title", validators=[DataRequired(), Length(max=160)])
    description = TextAreaField("Description", validators=[Optional(), Length(max=5000)], render_kw={"rows": 6})
    selection_mode = RadioField(
        "How seats are given",
        choices=[
            ("selection", "Selection: requests wait; I approve up to capacity"),
            ("first_come", "First come: a request takes a seat at once while seats remain"),
        ],
        default="selection",
    )
    capacity = IntegerField(
        "Places", validators=[Optional(), NumberRange(1, 10_000)], description="Leave empty for unlimited."
    )
    points = IntegerField(
        "Points",
        validators=[Optional(), NumberRange(0, 100_000)],
        description="Leave empty for the activity type's default.",
    )
    event_date = DateField("Event date", validators=[Optional()])
    deadline = DateField("Deadline to sign up", validators=[Optional()])
    term_start = DateField("Term starts (advisory boards)", validators=[Optional()])
    term_end = DateField("Term ends (advisory boards)", validators=[Optional()])
    is_virtual = BooleanField("Virtual", default=True)
    location = StringField("Location", validators=[Optional(), Length(max=160)])
    external_url = URLField(
        "External link (http or https)",
        validators=[Optional(), Length(max=500)],
        description="Where the work happens, e.g. the review site.",
    )
    industry_ids = MultiCheckboxField("Industries", coerce=int, validators=[Optional()])
    product_ids = MultiCheckboxField("Products", coerce=int, validators=[Optional()])
    region_ids = MultiCheckboxField("Regions", coerce=int, validators=[Optional()])
    size_band_ids = MultiCheckboxField("Company sizes", coerce=int, validators=[Optional()])
    submit = SubmitField("Save")


class DecisionForm(FlaskForm):
    message = StringField("Message to the advocate", validators=[Optional(), Length(max=1000)])
    override_reason = StringField(
        "Override reason (only to approve beyond a fatigue limit)", validators=[Optional(), Length(max=500)]
    )
    submit = SubmitField("Save")


class AddAdvocateForm(FlaskForm):
    advocate = StringField("Advocate's email address or id", validators=[DataRequired(), Length(max=254)])
    message = StringField("Message to the advocate", validators=[Optional(), Length(max=1000)])
    override_reason = StringField(
        "Override reason (only to add beyond a limit or the targeting)", validators=[Optional(), Length(max=500)]
    )
    submit = SubmitField("Add to this opportunity")


class StatusForm(FlaskForm):
    status = HiddenField(validators=[DataRequired()])
    submit = SubmitField("Change status")
