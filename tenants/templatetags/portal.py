from django import template

from tenants.limits.quotas import human_bytes

register = template.Library()


@register.filter
def bytes(value):  # noqa: A001 - reads well in templates: {{ n|bytes }}
    try:
        return human_bytes(int(value))
    except (TypeError, ValueError):
        return "—"


@register.filter
def num(value):
    if value is None:
        return "—"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    if number.is_integer() and abs(number) < 1e15:
        return f"{int(number):,}"
    if abs(number) >= 1e6 or abs(number) < 1e-3:
        return f"{number:.4g}"
    return f"{number:,.4f}".rstrip("0").rstrip(".")


@register.filter
def percent(share):
    """A share from 0 to 1 as a percentage: 0.7321 -> 73.2%."""
    if share is None or share == "":
        return "—"
    try:
        return f"{float(share) * 100:.1f}%".replace(".0%", "%")
    except (TypeError, ValueError):
        return "—"


@register.filter
def percent_of(limit, percent):
    try:
        return int(int(limit) * int(percent) / 100)
    except (TypeError, ValueError):
        return 0


@register.filter
def get(mapping, key):
    """{{ metrics|get:"accuracy" }}: a dict lookup with a variable key."""
    try:
        return mapping.get(key)
    except AttributeError:
        return None


@register.filter
def index(sequence, position):
    try:
        return sequence[int(position)]
    except (IndexError, TypeError, ValueError):
        return None
