"""Input serializers that take JSON types at their word.

DRF coerces what it is given: ``{"name": 0}`` becomes the name "0", ``{"dataset": "5"}`` the id
5 and ``{"everyone": "yes"}`` true. The OpenAPI schema says a string, an integer, a boolean, and
clients generated from it (or a fuzzer) rightly expect anything else to be refused. A JSON body is
checked against the declared types first (400 naming the field); form bodies, whose values are all
text, keep DRF's parsing.
"""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.http import QueryDict
from rest_framework import serializers

_EXPECTED = (  # most specific first: ChoiceField and EmailField are not all CharFields
    (serializers.BooleanField, (bool,), "true or false"),
    (serializers.IntegerField, (int, float), "a whole number"),
    (serializers.FloatField, (int, float), "a number"),
    (serializers.ChoiceField, (str,), "text"),
    (serializers.CharField, (str,), "text"),
    (serializers.ListField, (list,), "a list"),
    (serializers.DictField, (dict,), "an object"),
)


def json_type_error(field: serializers.Field, value) -> str | None:
    """Why ``value`` (parsed JSON) is not of ``field``'s type, or None when it is."""
    if value is None:
        return None  # the field's own allow_null decides
    for field_class, types, words in _EXPECTED:
        if not isinstance(field, field_class):
            continue
        if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
            return f"Must be {words}."
        if isinstance(field, serializers.IntegerField) and isinstance(value, float) and not value.is_integer():
            return f"Must be {words}."
        child = getattr(field, "child", None)
        if child is not None and not isinstance(child, serializers.JSONField):
            items = value.values() if isinstance(value, dict) else value
            return next((error for item in items if (error := json_type_error(child, item))), None)
        return None
    return None


class JSONInput(serializers.Serializer):
    # No docstring: drf-spectacular would give it to every input component as its description.

    def to_internal_value(self, data):
        if isinstance(data, dict) and not isinstance(data, QueryDict):
            errors = {name: [error] for name, field in self.fields.items()
                      if name in data and (error := json_type_error(field, data[name]))}
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


# Text as the API takes it: DRF trims it and refuses NUL characters (and, unless blank is
# allowed, what is left empty); the schema says so with a pattern, so no generated client sends
# "   " or "\u0000" believing it valid.
NO_NUL = RegexValidator(r"^[^\x00]+$", "Null characters are not allowed.")  # "" is allowed apart
NOT_BLANK = RegexValidator(r"^[^\x00]*\S[^\x00]*$", "Must contain a character other than spaces.")


def text(*, allow_blank: bool = False, **kwargs) -> serializers.CharField:
    """A CharField whose schema states DRF's rules: no NUL, and not blank unless allowed."""
    return serializers.CharField(allow_blank=allow_blank, validators=[NO_NUL if allow_blank else NOT_BLANK],
                                 **kwargs)
