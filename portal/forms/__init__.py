"""The base form: every text a user submits loses NUL and other control characters on the way in
(PostgreSQL refuses NUL in text, and none of them belongs in a name or a story); tabs and line
breaks stay."""
import re

from flask_wtf import FlaskForm

CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(value):
    return CONTROL.sub("", value) if isinstance(value, str) else value


class BaseForm(FlaskForm):
    class Meta:
        def bind_field(self, form, unbound_field, options):
            filters = [clean_text, *unbound_field.kwargs.get("filters", ())]
            return unbound_field.bind(form=form, filters=filters, **options)
