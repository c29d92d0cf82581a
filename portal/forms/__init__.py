"""The base form: every text a user submits loses NUL and other control characters on the way in
(PostgreSQL refuses NUL in text, and none of them belongs in a name or a story); tabs and line
breaks stay. Passwords are the exception: they are hashed, never stored or shown, and may hold any
character, so they reach the hasher exactly as typed."""

import re

from flask_wtf import FlaskForm
from wtforms import IntegerField as _WTFIntegerField
from wtforms import PasswordField
from wtforms.validators import Email, StopValidation, ValidationError

CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
MAX_INTEGER_DIGITS = 12


def clean_text(value):
    return CONTROL.sub("", value) if isinstance(value, str) else value


class IntegerField(_WTFIntegerField):
    """WTForms' IntegerField, refusing absurdly long numbers before any validator sees them:
    NumberRange calls math.isnan(), which raises OverflowError (a 500) on a 400-digit integer."""

    _too_large = False

    def process_formdata(self, valuelist):
        self._too_large = bool(valuelist) and len(str(valuelist[0]).strip().lstrip("+-")) > MAX_INTEGER_DIGITS
        if self._too_large:
            self.data = None
            raise ValueError(self.gettext("That number is too large."))
        super().process_formdata(valuelist)

    def pre_validate(self, form):
        if self._too_large:  # one clear message, not also "must be between ..." for the discarded value
            raise StopValidation()


class BaseForm(FlaskForm):
    class Meta:
        def bind_field(self, form, unbound_field, options):
            extra = () if issubclass(unbound_field.field_class, PasswordField) else (clean_text,)
            filters = [*extra, *unbound_field.kwargs.get("filters", ())]
            return unbound_field.bind(form=form, filters=filters, **options)


def mailable_email():
    """Validators for an address the mailer can send to: a valid address in plain ASCII.

    ``Email(allow_smtputf8=False)`` refuses non-ASCII before the '@' (``ada+😀@example.com``), which
    needs SMTPUTF8; the ASCII check also refuses internationalised domains, which would be stored as
    typed and fail the same way when sent (and would not match the address typed at sign-in)."""

    def ascii_only(form, field):
        if field.data and not field.data.isascii():
            raise ValidationError("Use an address with plain (ASCII) letters only; we cannot send email to this one.")

    return [Email(allow_smtputf8=False), ascii_only]
