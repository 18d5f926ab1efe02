"""The filters of the dataset, model and job lists: GET forms whose values stay in the URL.

The forms only parse the query string; the selectors apply the filters on top of what the member
may see, so a filter narrows a list and never lists another object.
"""

from __future__ import annotations

from django import forms
from django.core.paginator import Paginator

from ..ml.spec import CLASSIFICATION, REGRESSION
from ..models import Job

PAGE_SIZE = 25
_OWNER = [("", "Anyone"), ("me", "Me"), ("others", "Others")]


class DatasetFilterForm(forms.Form):
    search = forms.CharField(label="Search", max_length=200, required=False,
                             widget=forms.TextInput(attrs={"type": "search"}))
    owner = forms.ChoiceField(label="Owner", choices=_OWNER, required=False)


class ModelFilterForm(DatasetFilterForm):
    task = forms.ChoiceField(label="Task", required=False, choices=[
        ("", "Any"), (CLASSIFICATION, "Classification"), (REGRESSION, "Regression")])
    in_production = forms.ChoiceField(label="In production", required=False, choices=[
        ("", "Any"), ("yes", "Yes"), ("no", "No")])


class JobFilterForm(forms.Form):
    status = forms.ChoiceField(label="Status", required=False, choices=[("", "Any"), *Job.Status.choices])
    kind = forms.ChoiceField(label="Kind", required=False, choices=[("", "Any"), *Job.Kind.choices])
    who = forms.CharField(label="Started by (e-mail)", max_length=254, required=False)


def filtered_page(request, form_class: type[forms.Form], rows_for) -> tuple[dict, int]:
    """Parse the filters, read the rows through `rows_for(**filters)` (a selector) and paginate.
    Returns the template context (form, page, the query string without `page` for the pager
    links, whether any filter is set) and the status: 400 when a filter is not valid, with the
    unfiltered list, as the audit page does."""
    form = form_class(request.GET)
    valid = form.is_valid()
    filters = {k: v for k, v in form.cleaned_data.items() if v} if valid else {}
    page = Paginator(rows_for(**filters), PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "query": query.urlencode(), "filtered": bool(filters)}
    return context, 200 if valid else 400
