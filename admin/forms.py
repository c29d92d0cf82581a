from wtforms import HiddenField, StringField, SubmitField
from wtforms.validators import DataRequired, Length, Optional

from portal.forms import BaseForm as FlaskForm


class ApproveForm(FlaskForm):
    user_id = HiddenField(validators=[DataRequired()])
    submit = SubmitField("Approve")


class DeclineForm(FlaskForm):
    user_id = HiddenField(validators=[DataRequired()])
    reason = StringField("Reason (sent to the applicant)", validators=[Optional(), Length(max=500)])
    submit = SubmitField("Decline")
