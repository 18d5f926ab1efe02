"""REST API v1 of a tenant's data: datasets (jobs, models and predictions join them)."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from tenants import metering, quotas
from tenants.access import WRITER_ROLES
from tenants.api import FastJSONParser, JSONFirstNegotiation, TenantAPI
from tenants.openapi import PAGE_PARAMETERS, OpenApiTypes, file_response, paginated, problems
from tenants.problems import Problem

from . import jobs, serving, storage
from .models import Job, PredictionOutput
from .responses import download_response, prediction_download
from .selectors import (
    DELETE,
    EDIT,
    SHARE,
    VIEW,
    dataset_grants,
    dataset_list,
    get_dataset_for_user,
    get_job_for_user,
    get_model_for_user,
    get_model_version_for_user,
    job_list,
    model_grants,
    model_list,
)
from .services import datasets as dataset_services
from .services import jobs as job_services
from .services import models as model_services
from .services import predictions as prediction_services


def _invalid(exc: DjangoValidationError) -> Problem:
    errors = [{"field": field or None, "message": message}
              for field, messages in getattr(exc, "message_dict", {"": exc.messages}).items()
              for message in messages]
    detail = errors[0]["message"] if errors else "Invalid input."
    return Problem(409 if "already exists" in detail else 400, detail, errors=errors)


def _rejected(exc: dataset_services.DatasetRejected) -> Problem:
    extra = {k: v for k, v in (("line", exc.line), ("column", exc.column)) if v is not None}
    return Problem(exc.status, str(exc), slug=f"dataset-{exc.code.replace('_', '-')}",
                   errors=[{"field": exc.field, "message": str(exc)}], **extra)


@extend_schema_serializer(component_name="Dataset")
class DatasetOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    owner = serializers.SerializerMethodField()
    original_filename = serializers.CharField()
    format = serializers.CharField()
    rows = serializers.IntegerField()
    column_count = serializers.IntegerField()
    size_bytes = serializers.IntegerField()
    sha256 = serializers.CharField()
    encoding = serializers.SerializerMethodField()
    shared_with_everyone = serializers.CharField(source="everyone_permission")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_owner(self, obj) -> str | None:
        return obj.owner.email if obj.owner_id else None

    def get_encoding(self, obj) -> str | None:
        return obj.encoding or None  # None: Parquet, which has no text encoding


@extend_schema_serializer(component_name="ColumnProfile")
class ColumnProfileOutput(serializers.Serializer):
    """One column of a dataset's profile (mlcore.ingest.ColumnProfile); for the API docs."""

    name = serializers.CharField()
    type = serializers.ChoiceField(choices=["number", "category", "boolean", "datetime", "text"])
    missing = serializers.IntegerField()
    distinct = serializers.IntegerField()
    distinct_is_estimate = serializers.BooleanField()
    min = serializers.JSONField(help_text="number, ISO-8601 text for datetimes, or null")
    max = serializers.JSONField(help_text="number, ISO-8601 text for datetimes, or null")
    mean = serializers.JSONField(help_text="number, ISO-8601 text for datetimes, or null")
    std = serializers.FloatField(allow_null=True)
    top = serializers.ListField(child=serializers.DictField(), help_text="[{value, count}], most frequent first")
    top_is_estimate = serializers.BooleanField()
    histogram = serializers.ListField(child=serializers.DictField(),
                                      help_text="[{start, end, count}] for numbers and datetimes, "
                                                "else [{value, count}]")


@extend_schema_serializer(component_name="DatasetDetail")
class DatasetDetailOutput(DatasetOutput):
    columns = ColumnProfileOutput(many=True)
    permissions = serializers.ListField(child=serializers.CharField(),
                                        help_text="What you may do: view, edit, delete, share")


@extend_schema_serializer(component_name="DatasetCreated")
class DatasetCreatedOutput(DatasetOutput):
    columns = ColumnProfileOutput(many=True)


DatasetUploadInput = inline_serializer("DatasetUpload", fields={
    "file": serializers.FileField(help_text="CSV, TSV (also gzip-compressed) or Parquet"),
    "name": serializers.CharField(required=False, help_text="Default: from the file name"),
    "description": serializers.CharField(required=False),
    "encoding": serializers.CharField(required=False, help_text="Text encoding of a CSV/TSV file "
                                      "(utf-8 by default; cp1252, latin-1, utf-16...)"),
})
GrantOutput = inline_serializer("Grant", fields={
    "email": serializers.EmailField(required=False),
    "everyone": serializers.BooleanField(required=False),
    "permission": serializers.CharField(),
}, many=True)


class DatasetListApi(TenantAPI):
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    def initial(self, request, *args, **kwargs):
        # The encrypting handler must be in place before anything reads the body (incl. the CSRF
        # check of session requests); its first callback checks role and dataset count.
        self.budget = None
        if request.method == "POST":
            django_request = request._request
            self.budget = dataset_services.UploadBudget(django_request.tenant,
                                                        getattr(django_request, "membership", None))
            dataset_services.install_upload(request, self.budget)
        super().initial(request, *args, **kwargs)

    @extend_schema(summary="Datasets you may view", operation_id="datasets_list", parameters=PAGE_PARAMETERS,
                   responses={200: paginated(DatasetOutput, "Dataset"), **problems(401, 403)})
    def get(self, request):
        rows = dataset_list(membership=self.membership, user_id=request.user.pk)
        return self.paginated(rows, DatasetOutput)

    @extend_schema(summary="Upload a dataset", description="The file is encrypted as it streams in, "
                   "then validated and profiled; a refused file leaves nothing behind.",
                   request={"multipart/form-data": DatasetUploadInput},
                   responses={201: DatasetCreatedOutput, **problems(400, 401, 403, 409, 413)})
    def post(self, request):
        uploaded = request.FILES.get("file")
        try:
            dataset = dataset_services.dataset_create(
                tenant=self.tenant, user=request.user, upload=uploaded, budget=self.budget,
                name=request.data.get("name", ""), description=request.data.get("description", ""),
                encoding=request.data.get("encoding", ""))
        except dataset_services.DatasetRejected as exc:
            raise _rejected(exc)
        except DjangoValidationError as exc:
            raise _invalid(exc)
        body = DatasetOutput(dataset).data
        body["columns"] = dataset_services.dataset_profile(tenant=self.tenant, dataset=dataset)["columns"]
        return Response(body, status=status.HTTP_201_CREATED)

    def finalize_response(self, request, response, *args, **kwargs):
        # Refused before or during the upload (CSRF, role, quota, bad file): give back every byte.
        if self.budget is not None:
            self.budget.release_all()
        return super().finalize_response(request, response, *args, **kwargs)


class DatasetDetailApi(TenantAPI):
    @extend_schema_serializer(component_name="DatasetUpdate")
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200, required=False)
        description = serializers.CharField(max_length=5000, required=False, allow_blank=True)

    def _dataset(self, dataset_id, need):
        return get_dataset_for_user(membership=self.membership, user_id=self.request.user.pk,
                                    dataset_id=dataset_id, need=need)

    @extend_schema(summary="A dataset with its profile", responses={200: DatasetDetailOutput,
                                                                    **problems(401, 403, 404)})
    def get(self, request, dataset_id):
        dataset = self._dataset(dataset_id, "view")
        body = DatasetOutput(dataset).data
        profile = dataset_services.dataset_profile(tenant=self.tenant, dataset=dataset)
        body["columns"] = profile["columns"]
        body["permissions"] = sorted(dataset.allowed_actions)
        return Response(body)

    @extend_schema(summary="Rename or describe a dataset", request=InputSerializer,
                   responses={200: DatasetOutput, **problems(400, 401, 403, 404, 409)})
    def patch(self, request, dataset_id):
        dataset = self._dataset(dataset_id, EDIT)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            dataset_services.dataset_update(tenant=self.tenant, dataset=dataset, **data.validated_data)
        except DjangoValidationError as exc:
            raise _invalid(exc)
        return Response(DatasetOutput(dataset).data)

    @extend_schema(summary="Delete a dataset (its storage is freed at once)",
                   responses={204: None, **problems(401, 403, 404)})
    def delete(self, request, dataset_id):
        dataset = self._dataset(dataset_id, DELETE)
        dataset_services.dataset_delete(tenant=self.tenant, dataset=dataset)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DatasetPreviewApi(TenantAPI):
    @extend_schema(summary="The first rows of a dataset", parameters=[
        OpenApiParameter("limit", int, description="Rows, 1 to 100 (default 20).")],
        responses={200: inline_serializer("DatasetPreview", fields={
            "columns": serializers.ListField(child=serializers.CharField()),
            "rows": serializers.ListField(child=serializers.ListField(
                child=serializers.CharField(allow_null=True)))}), **problems(400, 401, 403, 404)})
    def get(self, request, dataset_id):
        dataset = get_dataset_for_user(membership=self.membership, user_id=request.user.pk,
                                       dataset_id=dataset_id)
        try:
            limit = min(max(int(request.query_params.get("limit", 20)), 1), 100)
        except ValueError:
            raise Problem(400, "limit must be a whole number between 1 and 100.",
                          errors=[{"field": "limit", "message": "Not a number."}])
        profile = dataset_services.dataset_profile(tenant=self.tenant, dataset=dataset)
        return Response({"columns": [c["name"] for c in profile["columns"]],
                         "rows": profile["preview"][:limit]})


class DatasetDownloadApi(TenantAPI):
    @extend_schema(summary="The original file, decrypted as it streams",
                   responses={**file_response("The file as it was uploaded.", "text/csv",
                                              "text/tab-separated-values", "application/gzip",
                                              "application/vnd.apache.parquet"),
                              **problems(401, 403, 404)})
    def get(self, request, dataset_id):
        dataset = get_dataset_for_user(membership=self.membership, user_id=request.user.pk,
                                       dataset_id=dataset_id)
        try:
            return download_response(self.tenant, dataset)
        except storage.StorageIntegrityError as exc:
            raise Problem(500, str(exc), slug="integrity-error", title="Integrity check failed")


class _ShareApi(TenantAPI):
    """List, grant and remove grants on one object (a dataset or a model).

    Owner and admins only: write_roles lets members in, then the access function requires the
    share right on this very object. Subclasses name the object, its permissions and services.
    """

    write_roles = WRITER_ROLES
    permissions: tuple[str, ...] = ()  # and: lookup(id), grants(obj), share(obj, ...), unshare(obj, ...)

    class GrantInput(serializers.Serializer):
        email = serializers.EmailField(required=False)
        everyone = serializers.BooleanField(required=False, default=False)
        permission = serializers.ChoiceField(choices=[], required=False)

        def __init__(self, *args, permissions=(), **kwargs):
            super().__init__(*args, **kwargs)
            self.fields["permission"].choices = list(permissions)

    def _input(self) -> dict:
        data = self.GrantInput(data=self.request.data, permissions=self.permissions)
        data.is_valid(raise_exception=True)
        return data.validated_data

    def get(self, request, **kwargs):
        return Response(self.grants(self.lookup(*kwargs.values())))

    def post(self, request, **kwargs):
        obj = self.lookup(*kwargs.values())
        values = self._input()
        if "permission" not in values:
            names = " or ".join(f"'{p}'" for p in self.permissions)
            raise Problem(400, f"Choose a permission: {names}.",
                          errors=[{"field": "permission", "message": "This field is required."}])
        try:
            self.share(obj, **values)
        except DjangoValidationError as exc:
            raise _invalid(exc)
        return Response(self.grants(obj), status=status.HTTP_201_CREATED)

    def delete(self, request, **kwargs):
        obj = self.lookup(*kwargs.values())
        values = {k: v for k, v in self._input().items() if k in ("email", "everyone")}
        try:
            self.unshare(obj, **values)
        except DjangoValidationError as exc:
            raise _invalid(exc)
        return Response(self.grants(obj))


def _share_schema(cls, label: str):
    """The share endpoints of one kind of object, documented on the subclass."""
    grant = inline_serializer(f"{label}GrantInput", fields={
        "email": serializers.EmailField(required=False, help_text="A member of the workspace"),
        "everyone": serializers.BooleanField(required=False, help_text="The whole workspace"),
        "permission": serializers.ChoiceField(choices=list(cls.permissions), required=False),
    })
    return extend_schema_view(
        get=extend_schema(summary=f"Who the {label.lower()} is shared with",
                          responses={200: GrantOutput, **problems(401, 403, 404)}),
        post=extend_schema(summary=f"Share the {label.lower()}", request=grant,
                           responses={201: GrantOutput, **problems(400, 401, 403, 404)}),
        delete=extend_schema(summary=f"Stop sharing the {label.lower()}", request=grant,
                             responses={200: GrantOutput, **problems(400, 401, 403, 404)}),
    )(cls)


class DatasetShareApi(_ShareApi):
    permissions = ("view", "edit")

    def lookup(self, dataset_id):
        return get_dataset_for_user(membership=self.membership, user_id=self.request.user.pk,
                                    dataset_id=dataset_id, need=SHARE)

    def grants(self, dataset):
        return dataset_grants(dataset=dataset)

    def share(self, dataset, **values):
        dataset_services.dataset_share(tenant=self.tenant, dataset=dataset, **values)

    def unshare(self, dataset, **values):
        dataset_services.dataset_unshare(tenant=self.tenant, dataset=dataset, **values)


_share_schema(DatasetShareApi, "Dataset")


# --- training jobs and jobs ----------------------------------------------------------------------
@extend_schema_serializer(component_name="Job")
class JobOutput(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    status = serializers.CharField()
    progress = serializers.FloatField()
    message = serializers.CharField()
    error = serializers.CharField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField()
    cpu_seconds = serializers.FloatField()
    peak_memory_bytes = serializers.IntegerField()
    result = serializers.JSONField()
    dataset = serializers.IntegerField(source="dataset_id")
    created_by = serializers.SerializerMethodField()
    wait_reason = serializers.SerializerMethodField()

    def get_created_by(self, obj) -> str | None:
        return obj.created_by.email if obj.created_by_id else None

    def get_wait_reason(self, obj) -> str | None:
        return job_services.wait_reason(tenant=self.context["request"]._request.tenant, job=obj)


class TrainingJobCreateApi(TenantAPI):
    @extend_schema_serializer(component_name="TrainingJobInput")
    class InputSerializer(serializers.Serializer):
        dataset = serializers.IntegerField()
        model_name = serializers.CharField(max_length=200)
        target = serializers.CharField(max_length=300)
        features = serializers.ListField(child=serializers.CharField(max_length=300), required=False,
                                         allow_empty=False)
        task = serializers.ChoiceField(choices=["classification", "regression"], required=False)
        algorithm = serializers.CharField(max_length=40)
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
        try:
            job = model_services.training_job_start(tenant=self.tenant, membership=self.membership,
                                                    user=request.user, dataset=dataset,
                                                    model_name=model_name, spec=values)
        except model_services.TrainingRefused as exc:
            raise Problem(422, str(exc), slug="training-refused",
                          errors=[{"field": exc.field, "message": str(exc)}])
        except DjangoValidationError as exc:
            raise _invalid(exc)
        return Response(JobOutput(job, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)


class JobListApi(TenantAPI):
    @extend_schema(summary="Jobs: yours, or every job for admins", operation_id="jobs_list", parameters=[
        *PAGE_PARAMETERS, OpenApiParameter("kind", str, enum=["training", "prediction"])],
        responses={200: paginated(JobOutput, "Job"), **problems(401, 403)})
    def get(self, request):
        rows = job_list(membership=self.membership, user_id=request.user.pk)
        kind = request.query_params.get("kind")
        if kind:
            rows = rows.filter(kind=kind)
        return self.paginated(rows, JobOutput)


class JobDetailApi(TenantAPI):
    @extend_schema(summary="A job: status, progress, result", responses={200: JobOutput, **problems(401, 403, 404)})
    def get(self, request, job_id):
        job = get_job_for_user(membership=self.membership, user_id=request.user.pk, job_id=job_id)
        return Response(JobOutput(job, context={"request": request}).data)


class JobCancelApi(TenantAPI):
    @extend_schema(summary="Cancel a job", request=None, responses={202: JobOutput, **problems(401, 403, 404)})
    def post(self, request, job_id):
        job = get_job_for_user(membership=self.membership, user_id=request.user.pk, job_id=job_id)
        job = jobs.job_cancel(tenant=self.tenant, job=job)
        return Response(JobOutput(job, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)


# --- models and versions ---------------------------------------------------------------------------
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
    dataset = serializers.IntegerField(source="dataset_id")
    dataset_name = serializers.CharField()
    train_seconds = serializers.FloatField()
    library_versions = serializers.JSONField()
    classes = serializers.JSONField()
    feature_importance = serializers.JSONField()
    job = serializers.IntegerField(source="job_id")
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
                   responses={200: paginated(ModelOutput, "Model"), **problems(401, 403)})
    def get(self, request):
        rows = model_list(membership=self.membership, user_id=request.user.pk).prefetch_related("versions")
        return self.paginated(rows, ModelOutput)


class ModelDetailApi(TenantAPI):
    @extend_schema_serializer(component_name="ModelUpdate")
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200, required=False)
        description = serializers.CharField(max_length=5000, required=False, allow_blank=True)

    def _model(self, model_id, need):
        return get_model_for_user(membership=self.membership, user_id=self.request.user.pk,
                                  model_id=model_id, need=need)

    @extend_schema(summary="A model and its versions", responses={200: ModelDetailOutput, **problems(401, 403, 404)})
    def get(self, request, model_id):
        model = self._model(model_id, VIEW)
        body = ModelOutput(model).data
        body["permissions"] = sorted(model.allowed_actions)
        return Response(body)

    @extend_schema(summary="Rename or describe a model", request=InputSerializer,
                   responses={200: ModelOutput, **problems(400, 401, 403, 404, 409)})
    def patch(self, request, model_id):
        model = self._model(model_id, EDIT)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            model_services.model_update(tenant=self.tenant, model=model, **data.validated_data)
        except DjangoValidationError as exc:
            raise _invalid(exc)
        return Response(ModelOutput(model).data)

    @extend_schema(summary="Delete a model and all its versions", responses={204: None, **problems(401, 403, 404)})
    def delete(self, request, model_id):
        model = self._model(model_id, DELETE)
        model_services.model_delete(tenant=self.tenant, model=model)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ModelShareApi(_ShareApi):
    permissions = ("view", "use", "edit")

    def lookup(self, model_id):
        return get_model_for_user(membership=self.membership, user_id=self.request.user.pk,
                                  model_id=model_id, need=SHARE)

    def grants(self, model):
        return model_grants(model=model)

    def share(self, model, **values):
        model_services.model_share(tenant=self.tenant, model=model, **values)

    def unshare(self, model, **values):
        model_services.model_unshare(tenant=self.tenant, model=model, **values)


_share_schema(ModelShareApi, "Model")


class ModelVersionDetailApi(TenantAPI):
    @extend_schema(summary="A model version: metrics, parameters, features", responses={200: VersionOutput, **problems(401, 403, 404)})
    def get(self, request, version_id):
        version = get_model_version_for_user(membership=self.membership, user_id=request.user.pk,
                                             version_id=version_id)
        return Response(VersionOutput(version).data)

    @extend_schema(summary="Delete a version that is not in production",
                   responses={204: None, **problems(401, 403, 404, 409)})
    def delete(self, request, version_id):
        version = get_model_version_for_user(membership=self.membership, user_id=request.user.pk,
                                             version_id=version_id, need=DELETE)
        try:
            model_services.model_version_delete(tenant=self.tenant, version=version)
        except DjangoValidationError as exc:
            raise Problem(409, " ".join(exc.messages))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ModelVersionPromoteApi(TenantAPI):
    @extend_schema(summary="Make this version the model's production version", request=None,
                   responses={200: ModelOutput, **problems(401, 403, 404)})
    def post(self, request, version_id):
        version = get_model_version_for_user(membership=self.membership, user_id=request.user.pk,
                                             version_id=version_id, need=EDIT)
        model = model_services.model_version_promote(tenant=self.tenant, version=version)
        return Response(ModelOutput(model).data)


# --- predictions -------------------------------------------------------------------------------
class PredictionJobCreateApi(TenantAPI):
    @extend_schema_serializer(component_name="PredictionJobInput")
    class InputSerializer(serializers.Serializer):
        dataset = serializers.IntegerField()
        model = serializers.IntegerField(required=False)
        model_version = serializers.IntegerField(required=False)
        id_column = serializers.CharField(max_length=300, required=False, allow_blank=True)

    @extend_schema(summary="Score a whole dataset (a job)", description="Give `model` (its production "
                   "version) or `model_version`.", request=InputSerializer,
                   responses={202: JobOutput, **problems(400, 401, 403, 404, 422, 429)})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        dataset = get_dataset_for_user(membership=self.membership, user_id=request.user.pk,
                                       dataset_id=values["dataset"])
        try:
            version = prediction_services.resolve_version(
                membership=self.membership, user_id=request.user.pk, model_id=values.get("model"),
                version_id=values.get("model_version"))
            job = prediction_services.prediction_job_start(
                tenant=self.tenant, membership=self.membership, user=request.user, dataset=dataset,
                version=version, id_column=values.get("id_column") or None)
        except prediction_services.PredictionRefused as exc:
            raise Problem(422, str(exc), slug="missing-columns" if exc.missing else "prediction-refused",
                          errors=[{"field": exc.field, "message": str(exc)}], missing_columns=exc.missing)
        return Response(JobOutput(job, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)


def _prediction_output(api: TenantAPI, job_id) -> PredictionOutput:
    job = get_job_for_user(membership=api.membership, user_id=api.request.user.pk, job_id=job_id)
    output = PredictionOutput.objects.filter(job=job).first()
    if job.kind != Job.Kind.PREDICTION or job.status != Job.Status.SUCCEEDED or output is None:
        raise Problem(409 if job.kind == Job.Kind.PREDICTION else 404,
                      f"This job has no result yet (it is {job.status})."
                      if job.kind == Job.Kind.PREDICTION else "No such resource.")
    return output


class JobResultApi(TenantAPI):
    @extend_schema(summary="A prediction job's output", parameters=[
        OpenApiParameter("format", str, enum=["csv", "parquet"], description="Default csv.")],
        responses={**file_response("Row number, the id column if chosen, prediction and class "
                                   "probabilities.", "text/csv", "application/vnd.apache.parquet"),
                   **problems(400, 401, 403, 404, 409)})
    def get(self, request, job_id):
        output = _prediction_output(self, job_id)
        fmt = request.query_params.get("format", "csv")
        if fmt not in ("csv", "parquet"):
            raise Problem(400, "format must be csv or parquet.",
                          errors=[{"field": "format", "message": "Use csv or parquet."}])
        return prediction_download(self.tenant, output, fmt)


class JobErrorsApi(TenantAPI):
    @extend_schema(summary="Rows a prediction job could not score, with row, column and reason",
                   responses={**file_response("CSV of refused rows.", "text/csv"),
                              **problems(401, 403, 404, 409)})
    def get(self, request, job_id):
        return prediction_download(self.tenant, _prediction_output(self, job_id), "errors")


class JobReceiptApi(TenantAPI):
    @extend_schema(summary="The signed receipt binding input, model and output",
                   responses={200: OpenApiTypes.OBJECT, **problems(401, 403, 404, 409)})
    def get(self, request, job_id):
        return Response(_prediction_output(self, job_id).receipt)


class ModelPredictApi(TenantAPI):
    """The hot path: no PostgreSQL statement when warm (see mlcore/serving.py)."""

    audit_exempt = True  # counted per (token, version, minute) instead: ../shared/API.md
    posts_change_nothing = True  # scoring rows: a read-scoped token may call it
    # DRF's JSON parsing and negotiation, minus per-call set-up (tenants/api.py): ~10 µs a call.
    parser_classes = [FastJSONParser]
    content_negotiation_class = JSONFirstNegotiation
    MAX_ROWS = 1000

    @extend_schema(
        summary="Predict a few rows online", description=f"Up to {MAX_ROWS} rows; `version` picks a "
        "version number, else the production version answers.",
        request=inline_serializer("OnlinePredictionInput", fields={
            "rows": serializers.ListField(child=serializers.DictField()),
            "version": serializers.IntegerField(required=False)}),
        responses={200: inline_serializer("OnlinePrediction", fields={
            "model_version": serializers.IntegerField(), "version": serializers.IntegerField(),
            "predictions": serializers.ListField(child=serializers.JSONField()),
            "probabilities": serializers.ListField(child=serializers.DictField(), required=False)}),
            **problems(400, 401, 403, 404, 413, 422, 429)})
    def post(self, request, model_id):
        from .ml import BadValuesError, MissingColumnsError

        django_request = request._request
        gate_result = django_request.gate
        access = serving.model_access(tenant=self.tenant, membership=self.membership,
                                      user_id=request.user.pk, model_id=model_id, epochs=gate_result.epochs)
        if not serving.can_use(access):
            raise Problem(403, "You can view this model but not use it for predictions.")
        rows, number = self._rows(request.data)
        version_id = serving.resolve_version(access, number)
        limits = quotas.limits_cached(self.tenant, epoch=gate_result.tenant_epoch)
        if gate_result.month_predicted_rows + len(rows) > limits["predicted_rows"]:
            raise quotas.QuotaExceeded(
                f"The month's prediction budget is used up: {gate_result.month_predicted_rows:,} of "
                f"{limits['predicted_rows']:,} rows.", quota="predicted_rows",
                used=gate_result.month_predicted_rows, limit=limits["predicted_rows"], status=403)
        try:
            result = serving.predictor(self.tenant, version_id).predict(rows)
        except MissingColumnsError as exc:
            message = prediction_services.missing_columns_message(exc.columns)
            raise Problem(422, message, slug="missing-columns", missing_columns=exc.columns,
                          errors=[{"field": "rows", "message": message}])
        except BadValuesError as exc:
            raise Problem(422, "Some values cannot be used: " + "; ".join(
                f"row {r}, column '{c}': {m}" for r, c, m in exc.errors[:5]), slug="bad-values",
                errors=[{"field": f"rows[{r - 1}].{c}", "message": m} for r, c, m in exc.errors[:100]])
        metering.online_buffer.add(tenant_id=self.tenant.id, user_id=request.user.pk,
                                   token_id=getattr(request.auth, "id", None), version_id=version_id,
                                   rows=len(rows))
        body = {"model_version": version_id, "version": access.version_numbers[version_id],
                "predictions": result["predictions"]}
        if result.get("probabilities") is not None:
            body["probabilities"] = result["probabilities"]
        return Response(body)

    def _rows(self, data) -> tuple[list[dict], int | None]:
        rows = data.get("rows") if isinstance(data, dict) else None
        if not isinstance(rows, list) or not rows or not all(isinstance(row, dict) for row in rows):
            raise Problem(400, "Send {\"rows\": [{column: value, ...}, ...]} with at least one row.",
                          errors=[{"field": "rows", "message": "A non-empty list of objects is required."}])
        if len(rows) > self.MAX_ROWS:
            raise Problem(413, f"At most {self.MAX_ROWS} rows per request; use a batch prediction job for more.",
                          errors=[{"field": "rows", "message": "Too many rows."}])
        number = data.get("version")
        if number is not None and (isinstance(number, bool) or not isinstance(number, int)):
            raise Problem(400, "version must be a version number.",
                          errors=[{"field": "version", "message": "A whole number is required."}])
        return rows, number
