"""Schedules: create, list, read, change, delete, pause, resume, and their runs."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.response import Response

from tenants.web.api import ObjectAPI, TenantAPI
from tenants.web.inputs import JSONInput, text
from tenants.web.openapi import PAGE_PARAMETERS, component_rules, paginated, problems
from tenants.web.problems import Problem

from ..models import Schedule
from ..selectors import (
    get_dataset_for_user,
    get_model_for_user,
    get_schedule_for_user,
    schedule_list,
    schedule_runs,
)
from ..services import schedules as schedule_services


@extend_schema_serializer(component_name="Schedule")
class ScheduleOutput(serializers.Serializer):
    id = serializers.IntegerField()
    action = serializers.ChoiceField(choices=Schedule.Action.values)
    dataset = serializers.IntegerField(source="dataset_id", allow_null=True,
                                       help_text="The dataset named; each run takes its latest version")
    dataset_name = serializers.CharField()
    model = serializers.IntegerField(source="model_id", allow_null=True, help_text="null once the model is deleted")
    model_name = serializers.CharField()
    frequency = serializers.ChoiceField(choices=Schedule.Frequency.values)
    cron = serializers.CharField(help_text="Five fields, UTC; daily and weekly are written as one too")
    next_run_at = serializers.DateTimeField()
    last_run_at = serializers.DateTimeField(allow_null=True)
    paused = serializers.BooleanField()
    paused_reason = serializers.CharField()
    created_by = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()

    def get_created_by(self, obj) -> str | None:
        return obj.created_by.email if obj.created_by_id else None


@extend_schema_serializer(component_name="ScheduleRun")
class ScheduleRunOutput(serializers.Serializer):
    id = serializers.IntegerField()
    started_at = serializers.DateTimeField()
    due_at = serializers.DateTimeField()
    outcome = serializers.ChoiceField(choices=["started", "failed"])
    reason = serializers.CharField(help_text="Why it could not start (empty when it started)")
    job = serializers.IntegerField(source="job_id", allow_null=True)
    job_status = serializers.SerializerMethodField()
    dataset = serializers.IntegerField(source="dataset_id", allow_null=True, help_text="The version it took")

    def get_job_status(self, obj) -> str | None:
        return obj.job.status if obj.job_id else None


ID_PARAMETER = {"type": "integer", "minimum": 1}  # what _int_param accepts


def _int_param(request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    if not (value.isascii() and value.isdigit() and int(value) >= 1):
        raise Problem(400, f"{name} must be an id.", errors=[{"field": name, "message": "A whole number from 1 is required."}])
    return int(value)


class ScheduleListApi(TenantAPI):
    idempotent = True

    @extend_schema_serializer(component_name="ScheduleInput")
    class InputSerializer(JSONInput):
        action = serializers.ChoiceField(choices=Schedule.Action.values,
                                         help_text="score: the latest version with the production version; "
                                                   "retrain: propose a new version for review")
        dataset = serializers.IntegerField()
        model = serializers.IntegerField()
        frequency = serializers.ChoiceField(choices=Schedule.Frequency.values)
        cron = text(max_length=100, required=False, allow_blank=True,
                    help_text="Required with frequency cron, e.g. '30 6 * * 1-5'")

    @extend_schema(summary="Schedules: yours, or every one for admins", operation_id="schedules_list",
                   parameters=[*PAGE_PARAMETERS, OpenApiParameter("dataset", ID_PARAMETER), OpenApiParameter("model", ID_PARAMETER)],
                   responses={200: paginated(ScheduleOutput, "Schedule"), **problems(400, 403)})
    def get(self, request):
        series, dataset_id = None, _int_param(request, "dataset")
        if dataset_id is not None:
            series = get_dataset_for_user(membership=self.membership, user_id=request.user.pk,
                                          dataset_id=dataset_id).series
        rows = schedule_list(membership=self.membership, user_id=request.user.pk, dataset_series=series,
                             model_id=_int_param(request, "model"))
        return self.paginated(rows, ScheduleOutput)

    @extend_schema(summary="Make a schedule", request=InputSerializer,
                   responses={201: ScheduleOutput, **problems(400, 401, 403, 404, 409)})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        dataset = get_dataset_for_user(membership=self.membership, user_id=request.user.pk,
                                       dataset_id=values["dataset"])
        model = get_model_for_user(membership=self.membership, user_id=request.user.pk, model_id=values["model"])
        schedule = schedule_services.schedule_create(
            tenant=self.tenant, membership=self.membership, user=request.user, action=values["action"],
            dataset=dataset, model=model, frequency=values["frequency"], cron=values.get("cron", ""))
        return Response(ScheduleOutput(schedule).data, status=status.HTTP_201_CREATED)


component_rules("ScheduleInput", anyOf=[{"properties": {"frequency": {"enum": ["daily", "weekly"]}}},
                                 {"required": ["cron"]}])


class ScheduleAPI(ObjectAPI):
    """An endpoint on the schedule of the URL: admins any, members their own (every need alike)."""

    url_kwarg = "schedule_id"

    def resolve(self, schedule_id, need):
        return get_schedule_for_user(membership=self.membership, user_id=self.request.user.pk,
                                     schedule_id=schedule_id)


class ScheduleDetailApi(ScheduleAPI):
    @extend_schema_serializer(component_name="ScheduleUpdate")
    class InputSerializer(JSONInput):
        frequency = serializers.ChoiceField(choices=Schedule.Frequency.values)
        cron = text(max_length=100, required=False, allow_blank=True)

    @extend_schema(summary="A schedule", responses={200: ScheduleOutput, **problems(401, 403, 404)})
    def get(self, request, **url):
        return Response(ScheduleOutput(self.object).data)

    @extend_schema(summary="Change a schedule's timetable", request=InputSerializer,
                   responses={200: ScheduleOutput, **problems(400, 401, 403, 404)})
    def patch(self, request, **url):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        schedule = schedule_services.schedule_update(tenant=self.tenant, schedule=self.object,
                                                     frequency=data.validated_data["frequency"],
                                                     cron=data.validated_data.get("cron", ""))
        return Response(ScheduleOutput(schedule).data)

    @extend_schema(summary="Delete a schedule (its runs go too; their jobs stay)",
                   responses={204: None, **problems(401, 403, 404)})
    def delete(self, request, **url):
        schedule_services.schedule_delete(tenant=self.tenant, schedule=self.object)
        return Response(status=status.HTTP_204_NO_CONTENT)


component_rules("ScheduleUpdate", anyOf=[{"properties": {"frequency": {"enum": ["daily", "weekly"]}}},
                                 {"required": ["cron"]}])


class SchedulePauseApi(ScheduleAPI):
    needs = {"POST": "edit"}

    @extend_schema(summary="Pause a schedule", request=None, responses={200: ScheduleOutput, **problems(401, 403, 404)})
    def post(self, request, **url):
        schedule = schedule_services.schedule_pause(tenant=self.tenant, schedule=self.object,
                                                    reason=f"Paused by {request.user.email}.")
        return Response(ScheduleOutput(schedule).data)


class ScheduleResumeApi(ScheduleAPI):
    needs = {"POST": "edit"}

    @extend_schema(summary="Resume a schedule (from now: missed runs are not made up)", request=None,
                   responses={200: ScheduleOutput, **problems(401, 403, 404, 409)})
    def post(self, request, **url):
        schedule = schedule_services.schedule_resume(tenant=self.tenant, schedule=self.object)
        return Response(ScheduleOutput(schedule).data)


class ScheduleRunsApi(ScheduleAPI):
    needs = {"GET": "view"}

    @extend_schema(summary="A schedule's runs, newest first", operation_id="schedule_runs_list",
                   parameters=PAGE_PARAMETERS,
                   responses={200: paginated(ScheduleRunOutput, "ScheduleRun"), **problems(400, 401, 403, 404)})
    def get(self, request, **url):
        return self.paginated(schedule_runs(schedule=self.object), ScheduleRunOutput)
