"""HTML pages: schedules (of one dataset or model, or all of one's own) and their runs."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from tenants.accounts.access import WRITER_ROLES
from tenants.web.pages import PAGE_ERRORS, form_errors_from, member_page, page_error

from ..models import Schedule
from ..selectors import (
    dataset_list,
    get_dataset_for_user,
    get_model_for_user,
    get_schedule_for_user,
    model_list,
    schedule_list,
    schedule_runs,
)
from ..services import schedules as schedule_services

CHOICES_SHOWN = 200


class ScheduleForm(forms.Form):
    action = forms.ChoiceField(choices=Schedule.Action.choices, label="What to do")
    dataset = forms.TypedChoiceField(coerce=int, label="Dataset (its latest version each time)")
    model = forms.TypedChoiceField(coerce=int, label="Model")
    frequency = forms.ChoiceField(choices=Schedule.Frequency.choices, label="When")
    cron = forms.CharField(required=False, max_length=100, label="Cron expression (UTC)",
                           help_text="Five fields: minute hour day-of-month month day-of-week, e.g. 30 6 * * 1-5")

    def __init__(self, *args, datasets, models, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["dataset"].choices = [(d.id, f"{d.name} (version {d.version})") for d in datasets]
        self.fields["model"].choices = [(m.id, m.name) for m in models]


def _filters(request) -> dict:
    """The dataset or model the page is about (?dataset= / ?model=), access-checked."""
    found = {}
    for name, lookup in (("dataset", get_dataset_for_user), ("model", get_model_for_user)):
        value = request.GET.get(name, "")
        if value.isdigit():
            found[name] = lookup(membership=request.membership, user_id=request.user.pk, **{f"{name}_id": value})
    return found


@member_page(roles=WRITER_ROLES)
def schedules_page(request):
    about = _filters(request)
    rows = schedule_list(membership=request.membership, user_id=request.user.pk,
                         dataset_series=about["dataset"].series if "dataset" in about else None,
                         model_id=about["model"].id if "model" in about else None)
    datasets = [about["dataset"]] if "dataset" in about else list(
        dataset_list(membership=request.membership, user_id=request.user.pk)[:CHOICES_SHOWN])
    models = [about["model"]] if "model" in about else list(
        model_list(membership=request.membership, user_id=request.user.pk)[:CHOICES_SHOWN])
    form = ScheduleForm(request.POST or None, datasets=datasets, models=models)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                _create(request, form.cleaned_data)
            except PAGE_ERRORS as exc:
                form_errors_from(form, exc)
            else:
                messages.success(request, "Schedule made.")
                return redirect(request.get_full_path())
    return render(request, "mlcore/schedules/list.html", {
        "schedules": rows[:CHOICES_SHOWN], "form": form, "about": about}, status=status)


def _create(request, values: dict) -> Schedule:
    dataset = get_dataset_for_user(membership=request.membership, user_id=request.user.pk,
                                   dataset_id=values["dataset"])
    model = get_model_for_user(membership=request.membership, user_id=request.user.pk, model_id=values["model"])
    return schedule_services.schedule_create(
        tenant=request.tenant, membership=request.membership, user=request.user, action=values["action"],
        dataset=dataset, model=model, frequency=values["frequency"], cron=values["cron"])


def _schedule(request, schedule_id):
    return get_schedule_for_user(membership=request.membership, user_id=request.user.pk, schedule_id=schedule_id)


@require_GET
@member_page(roles=WRITER_ROLES)
def schedule_detail(request, schedule_id: int):
    schedule = _schedule(request, schedule_id)
    return render(request, "mlcore/schedules/detail.html", {
        "schedule": schedule, "runs": schedule_runs(schedule=schedule)[:100]})


@require_POST
@member_page(roles=WRITER_ROLES)
def schedule_pause(request, schedule_id: int):
    schedule_services.schedule_pause(tenant=request.tenant, schedule=_schedule(request, schedule_id),
                                     reason=f"Paused by {request.user.email}.")
    messages.success(request, "Paused.")
    return redirect("schedule_detail", schedule_id=schedule_id)


@require_POST
@member_page(roles=WRITER_ROLES)
def schedule_resume(request, schedule_id: int):
    try:
        schedule_services.schedule_resume(tenant=request.tenant, schedule=_schedule(request, schedule_id))
    except PAGE_ERRORS as exc:
        messages.error(request, page_error(exc)[0])
    else:
        messages.success(request, "Resumed.")
    return redirect("schedule_detail", schedule_id=schedule_id)


@require_POST
@member_page(roles=WRITER_ROLES)
def schedule_delete(request, schedule_id: int):
    schedule_services.schedule_delete(tenant=request.tenant, schedule=_schedule(request, schedule_id))
    messages.success(request, "Schedule deleted.")
    return redirect(reverse("schedules"))
