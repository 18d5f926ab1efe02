"""HTML pages of model searches: the form on a dataset, the leaderboard (polled while it runs)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from tenants.accounts.access import WRITER_ROLES
from tenants.web.middleware import audit_exempt
from tenants.web.pages import PAGE_ERRORS, form_errors_from, member_page

from ..ml import ALGORITHMS
from ..ml.comparison import METRIC_KEYS
from ..selectors import get_dataset_for_user, get_search_for_user
from ..services import searches as search_services
from ..services.datasets import dataset_profile
from ..services.jobs import job_timing, search_best_trial, wait_reason


class SearchForm(forms.Form):
    target = forms.ChoiceField(label="Column to predict (target)")
    metric = forms.ChoiceField(label="Metric to optimise", required=False,
                               help_text="Automatic: ROC AUC for classes, RMSE for amounts.")
    algorithms = forms.MultipleChoiceField(label="Algorithms to try", required=False,
                                           widget=forms.CheckboxSelectMultiple,
                                           help_text="None ticked: every algorithm that fits the target.")
    budget_seconds = forms.IntegerField(label="Time budget (seconds)", initial=120,
                                        min_value=search_services.MIN_BUDGET_SECONDS,
                                        max_value=search_services.MAX_BUDGET_SECONDS)
    budget_cpu_seconds = forms.IntegerField(label="CPU budget (CPU-seconds)", initial=60,
                                            min_value=search_services.MIN_BUDGET_CPU_SECONDS,
                                            max_value=search_services.MAX_BUDGET_CPU_SECONDS,
                                            help_text="Never more than what is left of this month's CPU-seconds.")
    model_name = forms.CharField(label="Model name", max_length=200, required=False,
                                 help_text="The best trial becomes the next version of this model.")

    def __init__(self, *args, columns: list[dict], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["target"].choices = [(c["name"], f"{c['name']} — {c['type']}") for c in columns]
        if columns:
            self.fields["target"].initial = columns[-1]["name"]
        self.fields["metric"].choices = [("", "Automatic")] + [
            (key, key.upper() if len(key) <= 4 else key.replace("_", " ")) for keys in METRIC_KEYS.values() for key in keys]
        self.fields["algorithms"].choices = [(key, algo.label) for key, algo in ALGORITHMS.items()]


@member_page(roles=WRITER_ROLES)
def search_start_page(request, dataset_id: int):
    dataset = get_dataset_for_user(membership=request.membership, user_id=request.user.pk, dataset_id=dataset_id)
    columns = dataset_profile(tenant=request.tenant, dataset=dataset)["columns"]
    form = SearchForm(request.POST or None, columns=columns)
    status = 200
    if request.method == "POST" and form.is_valid():
        values = dict(form.cleaned_data)
        try:
            job = search_services.search_start(
                tenant=request.tenant, membership=request.membership, user=request.user, dataset=dataset,
                target=values["target"], metric=values["metric"] or None, algorithms=values["algorithms"] or None,
                budget_seconds=values["budget_seconds"], budget_cpu_seconds=values["budget_cpu_seconds"],
                model_name=values["model_name"])
        except PAGE_ERRORS as exc:
            form_errors_from(form, exc)
            status = getattr(exc, "status", 400)
        else:
            messages.success(request, "The search started. This page shows each trial as it finishes.")
            return redirect("search_detail", search_id=job.id)
    elif request.method == "POST":
        status = 400
    return render(request, "mlcore/searches/start.html", {"dataset": dataset, "form": form}, status=status)


def _board_context(request, search) -> dict:
    version = getattr(search, "model_version", None)
    return {"search": search, "job": search, "trials": list(search.trials.all()), "best": search_best_trial(search),
            "version": version if search.status == search.Status.SUCCEEDED else None,
            "wait_reason": wait_reason(tenant=request.tenant, job=search), "timing": job_timing(job=search)}


def _search(request, search_id):
    return get_search_for_user(membership=request.membership, user_id=request.user.pk, search_id=search_id)


@member_page(roles=WRITER_ROLES)
def search_detail(request, search_id: int):
    return render(request, "mlcore/searches/detail.html", _board_context(request, _search(request, search_id)))


@audit_exempt  # polled every second while the search runs; the page itself is logged
@member_page(roles=WRITER_ROLES)
def search_board(request, search_id: int):
    return render(request, "mlcore/searches/_board.html", _board_context(request, _search(request, search_id)))


@require_POST
@member_page(roles=WRITER_ROLES)
def search_cancel(request, search_id: int):
    search = search_services.search_cancel(tenant=request.tenant, job=_search(request, search_id))
    if search.status == search.Status.CANCELLED:
        messages.success(request, "The search was cancelled; its finished trials stay below.")
    elif search.is_finished:
        messages.info(request, f"The search had already {search.status}.")
    else:
        messages.info(request, "Stopping the search after the trial running now; this takes a few seconds.")
    return redirect("search_detail", search_id=search.id)
