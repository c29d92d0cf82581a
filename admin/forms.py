from wtforms import DateField, HiddenField, StringField, SubmitField
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
