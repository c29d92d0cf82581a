from wtforms import DateField, HiddenField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional, ValidationError

from portal.forms import BaseForm as FlaskForm
from portal.forms import IntegerField
from portal.routing import MAX_ID


class ApproveForm(FlaskForm):
    user_id = HiddenField(validators=[DataRequired()])
    submit = SubmitField("Approve")


class DeclineForm(FlaskForm):
    user_id = HiddenField(validators=[DataRequired()])
    reason = StringField("Reason (sent to the applicant)", validators=[Optional(), Length(max=500)])
    submit = SubmitField("Decline")


class AuditFilterForm(FlaskForm):
    """The audit page's filters (a GET form: no CSRF token, it changes nothing)."""

    class Meta:
        csrf = False

    actor = StringField("Who", validators=[Optional(), Length(max=254)], description='An email, or "system".')
    action = StringField(
        "Action",
        validators=[Optional(), Length(max=80)],
        description='Exact, or a family ending in a dot: "user.".',
        render_kw={"list": "audit-actions"},  # the actions recorded so far (a datalist on the page)
    )
    target_type = StringField("Object type", validators=[Optional(), Length(max=40)], description="user, opportunity…")
    target_id = IntegerField("Object id", validators=[Optional(), NumberRange(min=1, max=MAX_ID)])
    since = DateField("From", validators=[Optional()])
    until = DateField("To", validators=[Optional()])

    def validate_until(self, field):
        if field.data and self.since.data and field.data < self.since.data:
            raise ValidationError("The end date is before the start date.")


class SuspendForm(FlaskForm):
    reason = StringField("Reason (emailed to them)", validators=[DataRequired(), Length(max=500)])


class ReactivateForm(FlaskForm):
    reason = StringField("Note to them (optional)", validators=[Optional(), Length(max=500)])


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=[("advocate", "Advocate"), ("staff", "Staff"), ("admin", "Admin")])


class NoteForm(FlaskForm):
    body = TextAreaField("New note", validators=[DataRequired(), Length(max=2000)])


class ReverseForm(FlaskForm):
    reason = StringField("Reason", validators=[DataRequired(), Length(max=255)])


class AdvocateFilterForm(FlaskForm):
    """The advocates list's filters (GET; choices filled by the view from the program's lists)."""

    class Meta:
        csrf = False

    status = SelectField("Account", choices=[("active", "Active"), ("suspended", "Suspended")], default="active")
    industry = SelectField("Industry", choices=[], validate_choice=True, default="")
    region = SelectField("Region", choices=[], default="")
    country = SelectField("Country", choices=[], default="")
    product = SelectField("Product", choices=[], default="")
    activity = SelectField("Opted in to", choices=[], default="")
    freshness = SelectField("Freshness", choices=[("", "Any"), ("stale", "Stale profiles")], default="")
    level = SelectField("Level", choices=[], default="")  # the points levels (POINTS_LEVELS), filled by the view
    joined_since = DateField("Joined from", validators=[Optional()])
    joined_until = DateField("Joined to", validators=[Optional()])
    sort = SelectField(
        "Sort",
        choices=[("name", "Name"), ("newest", "Newest members first"), ("oldest", "Oldest members first")],
        default="name",
    )

    def validate_joined_until(self, field):
        if field.data and self.joined_since.data and field.data < self.joined_since.data:
            raise ValidationError("The end date is before the start date.")


class BulkAdvocatesForm(FlaskForm):
    action = SelectField(
        "With the selected advocates",
        choices=[
            ("approve", "Approve (those waiting for approval; each is emailed)"),
            ("nudge", 'Send a "please confirm your profile" email'),
            ("tag", "Add a topic tag"),
            ("export", "Export as CSV"),
        ],
    )
    tag = StringField("Tag (for adding a tag)", validators=[Optional(), Length(max=40)])
