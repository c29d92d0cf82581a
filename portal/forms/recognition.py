from wtforms import BooleanField, HiddenField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, Regexp

from portal.forms import BaseForm as FlaskForm
from portal.forms import IntegerField


class RedeemForm(FlaskForm):
    reward_id = HiddenField(validators=[DataRequired(), Regexp(r"^\d{1,10}$")])
    # A fresh key per rendered form: a double click or a retry sends the same key and orders once.
    idempotency_key = HiddenField(validators=[DataRequired(), Length(min=8, max=64)])
    submit = SubmitField("Redeem")


class CancelRedemptionForm(FlaskForm):
    reason = StringField("Reason", validators=[Optional(), Length(max=500)])
    submit = SubmitField("Cancel order")


class RewardForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    description = TextAreaField("Description", validators=[Optional(), Length(max=2000)])
    points_cost = IntegerField("Cost in points", validators=[InputRequired(), NumberRange(1, 1_000_000)])
    stock = IntegerField(
        "Stock", validators=[Optional(), NumberRange(0, 1_000_000)], description="Leave empty for unlimited."
    )
    per_advocate_limit = IntegerField(
        "Per-advocate limit",
        validators=[Optional(), NumberRange(1, 1000)],
        description="How many times one advocate may redeem it; empty for no limit.",
    )
    active = BooleanField("Active (shown in the catalog)", default=True)
    submit = SubmitField("Save reward")


class RewardEditForm(RewardForm):
    # The stock the form was drawn with ("none": unlimited). Orders placed while the form is open change
    # the stock; saving applies the admin's change to today's stock instead of writing back the old number.
    stock_seen = HiddenField(validators=[DataRequired(), Regexp(r"^(\d{1,7}|none)$")])

    @staticmethod
    def encode_stock(stock: int | None) -> str:
        return "none" if stock is None else str(stock)

    @property
    def seen_stock(self) -> int | None:
        return None if self.stock_seen.data == "none" else int(self.stock_seen.data)


class ActivityTypePointsForm(FlaskForm):
    default_points = IntegerField(
        "Default points",
        validators=[InputRequired(), NumberRange(0, 100_000)],
        description="Credited when an activity of this type is completed, unless the "
        "opportunity sets its own points. 0 to 100,000.",
    )
    submit = SubmitField("Save")


class FulfilForm(FlaskForm):
    note = StringField("Note to the advocate (e.g. tracking number)", validators=[Optional(), Length(max=500)])
    submit = SubmitField("Mark fulfilled")


class AdjustPointsForm(FlaskForm):
    email = StringField("Advocate's email", validators=[DataRequired(), Length(max=254)])
    amount = IntegerField("Points (negative to deduct)", validators=[InputRequired(), NumberRange(-100_000, 100_000)])
    reason = StringField(
        "Reason (required, kept in the ledger and audit log)",
        validators=[DataRequired(), Length(max=255)],
        description="The ledger is permanent and survives account deletion: describe what "
        "happened, do not name people or add contact details.",
    )
    idempotency_key = HiddenField(validators=[DataRequired(), Length(min=8, max=64)])
    submit = SubmitField("Adjust points")


class GrantBadgeForm(FlaskForm):
    email = StringField("Advocate's email", validators=[DataRequired(), Length(max=254)])
    badge_id = SelectField("Badge", coerce=int)
    reason = StringField("Reason", validators=[Optional(), Length(max=255)])
    submit = SubmitField("Grant badge")
