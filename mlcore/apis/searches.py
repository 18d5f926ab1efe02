"""Model searches ("Find the best model"): start one, read it with its leaderboard, cancel it."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.response import Response

from tenants.web.api import ObjectAPI, TenantAPI
from tenants.web.inputs import JSONInput, text
from tenants.web.openapi import problems

from ..selectors import get_dataset_for_user, get_search_for_user
from ..services import jobs as job_services
from ..services import searches as search_services
from .jobs import JobStateOutput


@extend_schema_serializer(component_name="SearchTrial")
class TrialOutput(serializers.Serializer):
    number = serializers.IntegerField()
    rung = serializers.IntegerField(help_text="0 first; each rung keeps the better half on twice the rows")
    fraction = serializers.FloatField(help_text="share of the fitting rows this trial learnt from")
    rows = serializers.IntegerField()
    algorithm = serializers.CharField()
    params = serializers.JSONField()
    status = serializers.ChoiceField(choices=["succeeded", "failed"])
    metric = serializers.CharField()
    score = serializers.FloatField(allow_null=True, help_text="the metric on the validation rows")
    metrics = serializers.JSONField()
    error = serializers.CharField()
    seconds = serializers.FloatField()
    cpu_seconds = serializers.FloatField()
    finished_at = serializers.DateTimeField()


@extend_schema_serializer(component_name="Search")
class SearchOutput(JobStateOutput):
    id = serializers.IntegerField(help_text="the search's job id (also under /api/v1/jobs/)")
    cpu_seconds = serializers.FloatField(help_text="metered so far, every trial and the final fit")
    target = serializers.CharField(source="params.spec.target")
    task = serializers.CharField(source="params.spec.task")
    metric = serializers.CharField(source="params.metric")
    algorithms = serializers.ListField(child=serializers.CharField(), source="params.algorithms")
    model_name = serializers.CharField(source="params.model_name")
    budget_seconds = serializers.IntegerField(source="params.budget_seconds")
    budget_cpu_seconds = serializers.FloatField(
        source="params.budget_cpu_seconds", help_text="as asked, capped at the CPU-seconds left when it started")
    trials = TrialOutput(many=True, help_text="in the order they finished")
    best_trial = serializers.SerializerMethodField(help_text="number of the best trial so far (null: none)")
    result = serializers.JSONField(help_text="once succeeded: {model, model_version, version, best_trial, "
                                             "trials, stop_reason}")

    def get_best_trial(self, obj) -> int | None:
        winner = job_services.search_best_trial(obj)
        return winner.number if winner else None


class SearchCreateApi(TenantAPI):
    idempotent = True

    @extend_schema_serializer(component_name="SearchInput")
    class InputSerializer(JSONInput):
        dataset = serializers.IntegerField()
        target = text(max_length=300)
        budget_seconds = serializers.IntegerField(help_text="wall time, from 5")
        budget_cpu_seconds = serializers.IntegerField(help_text="CPU-seconds, from 2; capped at what is left")
        algorithms = serializers.ListField(child=text(max_length=40), required=False, allow_empty=False,
                                           help_text="Default: every algorithm for the task")
        metric = text(max_length=20, required=False, help_text="Default: roc_auc (classes), rmse (amounts)")
        features = serializers.ListField(child=text(max_length=300), required=False, allow_empty=False,
                                         min_length=1, help_text="Default: every column but the target")
        task = serializers.ChoiceField(choices=["classification", "regression"], required=False)
        model_name = text(max_length=200, required=False)

    @extend_schema(summary="Find the best model within a budget (a search job)", request=InputSerializer,
                   responses={202: SearchOutput, **problems(400, 401, 403, 404, 409, 422, 429)})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        dataset = get_dataset_for_user(membership=self.membership, user_id=request.user.pk,
                                       dataset_id=values.pop("dataset"))
        job = search_services.search_start(tenant=self.tenant, membership=self.membership, user=request.user,
                                           dataset=dataset, **values)
        search = get_search_for_user(membership=self.membership, user_id=request.user.pk, search_id=job.id)
        return Response(SearchOutput(search, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)


class SearchAPI(ObjectAPI):
    """An endpoint on the search of the URL: admins any, members their own (like jobs)."""

    url_kwarg = "search_id"
    needs = {"GET": "view", "POST": "edit"}

    def resolve(self, search_id, need):
        return get_search_for_user(membership=self.membership, user_id=self.request.user.pk, search_id=search_id)


class SearchDetailApi(SearchAPI):
    @extend_schema(summary="A search with its trials (the leaderboard)",
                   responses={200: SearchOutput, **problems(401, 403, 404)})
    def get(self, request, **url):
        return Response(SearchOutput(self.object, context={"request": request}).data)


class SearchCancelApi(SearchAPI):
    @extend_schema(summary="Cancel a search (its finished trials stay)", request=None,
                   responses={202: SearchOutput, **problems(401, 403, 404)})
    def post(self, request, **url):
        search_services.search_cancel(tenant=self.tenant, job=self.object)
        search = self.resolve(self.object.pk, "view")
        return Response(SearchOutput(search, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)
