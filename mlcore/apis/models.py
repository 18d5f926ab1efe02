"""Models and their versions: list, read, rename, delete, share, promote."""

from __future__ import annotations

from drf_spectacular.utils import (
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.response import Response

from tenants.web.api import ObjectAPI, TenantAPI
from tenants.web.inputs import JSONInput, text
from tenants.web.openapi import PAGE_PARAMETERS, paginated, problems

from ..selectors import (
    EDIT,
    MODEL_SHARING,
    get_model_for_user,
    get_model_version_for_user,
    model_list,
    monitoring_reports,
)
from ..services import models as model_services
from .sharing import ShareApi, share_schema


@extend_schema_serializer(component_name="ModelVersion")
class VersionOutput(serializers.Serializer):
    id = serializers.IntegerField()
    model = serializers.IntegerField(source="model_id")
    version = serializers.IntegerField()
    metrics = serializers.JSONField()
    params = serializers.JSONField()
    features = serializers.JSONField()
    target = serializers.CharField()
    task = serializers.CharField()
    algorithm = serializers.CharField()
    evaluation = serializers.JSONField()
    dataset = serializers.IntegerField(source="dataset_id", allow_null=True,
                                       help_text="null once the dataset is deleted")
    dataset_name = serializers.CharField()
    dataset_version = serializers.IntegerField(help_text="The version of the dataset it was trained on")
    train_seconds = serializers.FloatField()
    library_versions = serializers.JSONField()
    classes = serializers.JSONField()
    feature_importance = serializers.JSONField()
    job = serializers.IntegerField(source="job_id", allow_null=True)
    decision_threshold = serializers.FloatField(
        allow_null=True, help_text="Two-class models: the positive class (classes[1]) is predicted when "
                                   "its probability is at least this; null: the more probable class")
    created_at = serializers.DateTimeField()


@extend_schema_serializer(component_name="Model")
class ModelOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    task = serializers.CharField()
    owner = serializers.SerializerMethodField()
    production_version = serializers.SerializerMethodField()
    versions = serializers.SerializerMethodField()
    shared_with_everyone = serializers.CharField(source="everyone_permission")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_owner(self, obj) -> str | None:
        return obj.owner.email if obj.owner_id else None

    def get_production_version(self, obj) -> int | None:
        return obj.production_version.version if obj.production_version_id else None

    @extend_schema_field(serializers.ListField(child=serializers.DictField(), help_text=(
        "[{id, version, metrics, algorithm, created_at}], oldest first")))
    def get_versions(self, obj):
        return [{"id": v.id, "version": v.version, "metrics": v.metrics, "algorithm": v.algorithm,
                 "created_at": v.created_at} for v in obj.versions.all()]


@extend_schema_serializer(component_name="ModelDetail")
class ModelDetailOutput(ModelOutput):
    permissions = serializers.ListField(child=serializers.CharField(),
                                        help_text="What you may do: view, use, edit, delete, share")


class ModelListApi(TenantAPI):
    @extend_schema(summary="Models you may view", operation_id="models_list", parameters=PAGE_PARAMETERS,
                   responses={200: paginated(ModelOutput, "Model"), **problems(400, 403)})
    def get(self, request):
        rows = model_list(membership=self.membership, user_id=request.user.pk).prefetch_related("versions")
        return self.paginated(rows, ModelOutput)


class ModelAPI(ObjectAPI):
    """An endpoint on the model of the URL, resolved once into self.object."""

    url_kwarg = "model_id"

    def resolve(self, model_id, need):
        return get_model_for_user(membership=self.membership, user_id=self.request.user.pk,
                                  model_id=model_id, need=need)


class ModelVersionAPI(ObjectAPI):
    """An endpoint on the model version of the URL (its model's rights), resolved once into self.object."""

    url_kwarg = "version_id"

    def resolve(self, version_id, need):
        return get_model_version_for_user(membership=self.membership, user_id=self.request.user.pk,
                                          version_id=version_id, need=need)


class ModelDetailApi(ModelAPI):
    @extend_schema_serializer(component_name="ModelUpdate")
    class InputSerializer(JSONInput):
        name = text(max_length=200, required=False)
        description = text(max_length=5000, required=False, allow_blank=True)

    @extend_schema(summary="A model and its versions", responses={200: ModelDetailOutput, **problems(401, 403, 404)})
    def get(self, request, **url):
        model = self.object
        body = ModelOutput(model).data
        body["permissions"] = sorted(model.allowed_actions)
        return Response(body)

    @extend_schema(summary="Rename or describe a model", request=InputSerializer,
                   responses={200: ModelOutput, **problems(400, 401, 403, 404, 409)})
    def patch(self, request, **url):
        model = self.object
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        model_services.model_update(tenant=self.tenant, model=model, **data.validated_data)
        return Response(ModelOutput(model).data)

    @extend_schema(summary="Delete a model and all its versions", responses={204: None, **problems(401, 403, 404)})
    def delete(self, request, **url):
        model_services.model_delete(tenant=self.tenant, model=self.object)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ModelShareApi(ShareApi, ModelAPI):
    permissions = MODEL_SHARING.levels


share_schema(ModelShareApi, "Model")


class ModelVersionDetailApi(ModelVersionAPI):
    @extend_schema(summary="A model version: metrics, parameters, features", responses={200: VersionOutput, **problems(401, 403, 404)})
    def get(self, request, **url):
        return Response(VersionOutput(self.object).data)

    @extend_schema(summary="Delete a version that is not in production",
                   responses={204: None, **problems(401, 403, 404, 409)})
    def delete(self, request, **url):
        model_services.model_version_delete(tenant=self.tenant, version=self.object)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ModelVersionPromoteApi(ModelVersionAPI):
    needs = {"POST": EDIT}

    @extend_schema(summary="Make this version the model's production version", request=None,
                   responses={200: ModelOutput, **problems(401, 403, 404)})
    def post(self, request, **url):
        model = model_services.model_version_promote(tenant=self.tenant, version=self.object)
        return Response(ModelOutput(model).data)


class ModelVersionThresholdApi(ModelVersionAPI):
    needs = {"POST": EDIT}

    @extend_schema_serializer(component_name="DecisionThreshold")
    class InputSerializer(JSONInput):
        threshold = serializers.FloatField(
            min_value=model_services.THRESHOLD_MIN, max_value=model_services.THRESHOLD_MAX, allow_null=True,
            help_text="From 0.01 to 0.99; null returns to predicting the more probable class")

    @extend_schema(summary="Set a two-class version's decision threshold (online predictions use it at once, "
                           "batch jobs from their submission)", request=InputSerializer,
                   responses={200: VersionOutput, **problems(400, 401, 403, 404, 409)})
    def post(self, request, **url):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = model_services.model_version_threshold_set(tenant=self.tenant, version=self.object,
                                                              threshold=data.validated_data["threshold"])
        return Response(VersionOutput(version).data)


@extend_schema_serializer(component_name="MonitoringReport")
class MonitoringReportOutput(serializers.Serializer):
    day = serializers.DateField(help_text="The UTC day whose sampled inputs were compared")
    model_version = serializers.IntegerField(source="model_version_id")
    rows = serializers.IntegerField(help_text="Sampled rows (online and batch) compared")
    max_psi = serializers.FloatField(allow_null=True, help_text=(
        "The largest population stability index of a feature; null with too few rows"))
    max_psi_feature = serializers.CharField()
    out_of_range = serializers.FloatField(allow_null=True, help_text=(
        "The largest share of a feature's values outside what training saw"))
    missing_rate = serializers.FloatField(allow_null=True, help_text="The largest missing-value rate of a feature")
    threshold = serializers.FloatField(help_text="The PSI above which the day counts as drift")
    drifted = serializers.BooleanField()
    features = serializers.JSONField(source="details.features", help_text=(
        "{feature: {type, rows, psi, out_of_range, missing_rate, training_missing_rate}}"))
    predictions = serializers.JSONField(source="details.predictions", help_text=(
        "{rows, shares: {class: share}} for classifiers; {rows, mean, p10, p50, p90} for regressors"))
    notified_at = serializers.DateTimeField(allow_null=True, help_text="When the owner was told of this crossing")
    created_at = serializers.DateTimeField()


class ModelVersionMonitoringApi(ModelVersionAPI):
    @extend_schema(summary="A version's daily monitoring reports (drift of its inputs), newest first",
                   operation_id="model_versions_monitoring_list", parameters=PAGE_PARAMETERS,
                   responses={200: paginated(MonitoringReportOutput, "MonitoringReport"),
                              **problems(400, 401, 403, 404)})
    def get(self, request, **url):
        return self.paginated(monitoring_reports(version=self.object), MonitoringReportOutput)
