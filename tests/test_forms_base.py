"""The base form every portal form derives from: control characters leave text fields, not
passwords; integers of absurd length are a validation error, not a 500."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest
from werkzeug.datastructures import MultiDict
from wtforms import IntegerField as WTFIntegerField
from wtforms import PasswordField, StringField
from wtforms.validators import NumberRange

import admin
import portal.forms
from portal.forms import BaseForm, IntegerField


class Sample(BaseForm):
    class Meta:
        csrf = False

    name = StringField()
    password = PasswordField()
    count = IntegerField(validators=[NumberRange(0, 50)])


@pytest.fixture
def ctx(app):
    with app.test_request_context("/"):
        yield


def test_control_characters_leave_text_but_not_passwords(ctx):
    form = Sample(
        formdata=MultiDict({"name": "Ada\x00\x1b Lovelace\n", "password": "pa\x1bss\x00word-12", "count": "3"})
    )
    assert form.validate(), form.errors
    assert form.name.data == "Ada Lovelace\n"
    assert form.password.data == "pa\x1bss\x00word-12"


@pytest.mark.parametrize("value", ["9" * 13, "9" * 400, "-" + "9" * 400, "+" + "9" * 5000])
def test_huge_integers_are_a_field_error(ctx, value):
    form = Sample(formdata=MultiDict({"count": value}))
    assert not form.validate()
    assert form.count.errors == ["That number is too large."]
    assert form.count.data is None


@pytest.mark.parametrize("value,expected", [("0", 0), ("50", 50), (" 7 ", 7), ("-" + "0" * 11 + "1", -1)])
def test_ordinary_integers_still_work(ctx, value, expected):
    form = Sample(formdata=MultiDict({"count": value}))
    form.validate()
    assert form.count.data == expected


def _all_forms():
    for pkg in (portal.forms, admin):
        for info in pkgutil.iter_modules(pkg.__path__, pkg.__name__ + "."):
            module = importlib.import_module(info.name)
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if issubclass(cls, BaseForm) and cls.__module__ == module.__name__:
                    yield cls


def test_every_form_uses_the_guarded_integer_field():
    forms = list(_all_forms())
    assert len(forms) > 10
    for cls in forms:
        for name, unbound in inspect.getmembers(cls):
            field_class = getattr(unbound, "field_class", None)
            if field_class is not None and issubclass(field_class, WTFIntegerField):
                assert issubclass(field_class, IntegerField), f"{cls.__name__}.{name} uses wtforms.IntegerField"
