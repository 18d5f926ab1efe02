"""Jobs: start a training job, list, read, cancel."""

from __future__ import annotations

from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.response import Response

from tenants.web.api import ObjectAPI, TenantAPI
from tenants.web.inputs import JSONInput, text
from tenants.web.openapi import PAGE_PARAMETERS, paginated, problems
from tenants.web.problems import Problem

from .. import jobs
from ..selectors import (
    get_dataset_for_user,
    get_job_for_user,
    job_list,
)
from ..services import jobs as job_services
from ..services import models as model_services

KINDS = ["training", "prediction", "search"]


class JobStateOutput(serializers.Serializer):
    """Where a job stands: shared by jobs and by searches (a search is a job of kind "search")."""

    id = serializers.IntegerField()
    status = serializers.CharField()
    progress = serializers.FloatField()
    message = serializers.CharField()
    error = serializers.CharField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    cpu_seconds = serializers.FloatField()
    result = serializers.JSONField()
    dataset = serializers.IntegerField(source="dataset_id", allow_null=True,
                                       help_text="null once the dataset is deleted")
    wait_reason = serializers.SerializerMethodField()

    def get_wait_reason(self, obj) -> str | None:
        return job_services.wait_reason(tenant=self.context["request"]._request.tenant, job=obj)


@extend_schema_serializer(component_name="Job")
class JobOutput(JobStateOutput):
    kind = serializers.CharField()
    peak_memory_bytes = serializers.IntegerField()
    created_by = serializers.SerializerMethodField()

    def get_created_by(self, obj) -> str | None:
        return obj.created_by.email if obj.created_by_id else None


class TrainingJobCreateApi(TenantAPI):
    idempotent = True

    @extend_schema_serializer(component_name="TrainingJobInput")
    class InputSerializer(JSONInput):
        dataset = serializers.IntegerField()
        model_name = text(max_length=200)
        target = text(max_length=300)
        features = serializers.ListField(child=text(max_length=300), required=False, allow_empty=False,
                                         min_length=1, help_text="Default: every column but the target")
        task = serializers.ChoiceField(choices=["classification", "regression"], required=False)
        algorithm = text(max_length=40)
        params = serializers.DictField(required=False, default=dict)
        evaluation = serializers.DictField(required=False)

    @extend_schema(summary="Train a model version (a job)", request=InputSerializer,
                   responses={202: JobOutput, **problems(400, 401, 403, 404, 422, 429)})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        dataset = get_dataset_for_user(membership=self.membership, user_id=request.user.pk,
                                       dataset_id=values.pop("dataset"))
        model_name = values.pop("model_name")
        job = model_services.training_job_start(tenant=self.tenant, membership=self.membership,
                                                user=request.user, dataset=dataset,
                                                model_name=model_name, spec=values)
        return Response(JobOutput(job, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)


class JobListApi(TenantAPI):
    @extend_schema(summary="Jobs: yours, or every job for admins", operation_id="jobs_list", parameters=[
        *PAGE_PARAMETERS, OpenApiParameter("kind", str, enum=KINDS)],
        responses={200: paginated(JobOutput, "Job"), **problems(400, 403)})
    def get(self, request):
        rows = job_list(membership=self.membership, user_id=request.user.pk)
        kind = request.query_params.get("kind")
        if kind is not None:
            if kind not in KINDS:
                raise Problem(400, "kind must be training, prediction or search.",
                              errors=[{"field": "kind", "message": "Use training, prediction or search."}])
            rows = rows.filter(kind=kind)
        return self.paginated(rows, JobOutput)


class JobAPI(ObjectAPI):
    """An endpoint on the job of the URL, resolved once into self.object: admins any job,
    members their own (a job has no per-object grants, so every need is the same)."""

    url_kwarg = "job_id"
    needs = {"GET": "view", "POST": "edit"}

    def resolve(self, job_id, need):
        return get_job_for_user(membership=self.membership, user_id=self.request.user.pk, job_id=job_id)


class JobDetailApi(JobAPI):
    @extend_schema(summary="A job: status, progress, result", responses={200: JobOutput, **problems(401, 403, 404)})
    def get(self, request, **url):
        return Response(JobOutput(self.object, context={"request": request}).data)


class JobCancelApi(JobAPI):
    @extend_schema(summary="Cancel a job", request=None, responses={202: JobOutput, **problems(401, 403, 404)})
    def post(self, request, **url):
        job = jobs.job_cancel(tenant=self.tenant, job=self.object)
        return Response(JobOutput(job, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)
