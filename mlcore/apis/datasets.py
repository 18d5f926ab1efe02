"""Datasets: list and upload, read, rename, preview, download, share."""

from __future__ import annotations

from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from tenants.web.api import ObjectAPI, TenantAPI
from tenants.web.inputs import JSONInput, text
from tenants.web.openapi import PAGE_PARAMETERS, file_response, paginated, problems
from tenants.web.problems import Problem

from .. import storage
from ..responses import download_response
from ..selectors import DATASET_SHARING, dataset_list, get_dataset_for_user
from ..services import datasets as dataset_services
from ..services import uploads
from .sharing import ShareApi, share_schema


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
    version = serializers.IntegerField(help_text="1 for the first upload; each new version adds one")
    series = serializers.UUIDField(help_text="The same for every version of one dataset")
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

class UploadingAPI:
    """The upload session of a request that may carry a file: open before anything reads the body
    (incl. the CSRF check of session requests; its first callback checks role and dataset count),
    closed with the response, which gives back every byte of a refused upload."""

    def initial(self, request, *args, **kwargs):
        self.upload = uploads.UploadSession(request).open()
        super().initial(request, *args, **kwargs)

    def finalize_response(self, request, response, *args, **kwargs):
        upload = getattr(self, "upload", None)
        if upload is not None:
            upload.close()
        return super().finalize_response(request, response, *args, **kwargs)


class DatasetListApi(UploadingAPI, TenantAPI):
    idempotent = True
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(summary="Datasets you may view", operation_id="datasets_list", parameters=PAGE_PARAMETERS,
                   responses={200: paginated(DatasetOutput, "Dataset"), **problems(400, 403)})
    def get(self, request):
        rows = dataset_list(membership=self.membership, user_id=request.user.pk)
        return self.paginated(rows, DatasetOutput)

    @extend_schema(summary="Upload a dataset", description="The file is encrypted as it streams in, "
                   "then validated and profiled; a refused file leaves nothing behind.",
                   request={"multipart/form-data": DatasetUploadInput},
                   responses={201: DatasetCreatedOutput, **problems(400, 401, 403, 409, 413)})
    def post(self, request):
        uploaded = request.FILES.get("file")
        dataset = dataset_services.dataset_create(
            tenant=self.tenant, user=request.user, upload=uploaded, budget=self.upload.budget,
            name=request.data.get("name", ""), description=request.data.get("description", ""),
            encoding=request.data.get("encoding", ""))
        body = DatasetOutput(dataset).data
        body["columns"] = dataset_services.dataset_profile(tenant=self.tenant, dataset=dataset)["columns"]
        return Response(body, status=status.HTTP_201_CREATED)


class DatasetAPI(ObjectAPI):
    """An endpoint on the dataset of the URL, resolved once into self.object."""

    url_kwarg = "dataset_id"

    def resolve(self, dataset_id, need):
        return get_dataset_for_user(membership=self.membership, user_id=self.request.user.pk,
                                    dataset_id=dataset_id, need=need)


class DatasetDetailApi(DatasetAPI):
    @extend_schema_serializer(component_name="DatasetUpdate")
    class InputSerializer(JSONInput):
        name = text(max_length=200, required=False)
        description = text(max_length=5000, required=False, allow_blank=True)

    @extend_schema(summary="A dataset with its profile", responses={200: DatasetDetailOutput,
                                                                    **problems(401, 403, 404)})
    def get(self, request, **url):
        dataset = self.object
        body = DatasetOutput(dataset).data
        profile = dataset_services.dataset_profile(tenant=self.tenant, dataset=dataset)
        body["columns"] = profile["columns"]
        body["permissions"] = sorted(dataset.allowed_actions)
        return Response(body)

    @extend_schema(summary="Rename or describe a dataset", request=InputSerializer,
                   responses={200: DatasetOutput, **problems(400, 401, 403, 404, 409)})
    def patch(self, request, **url):
        dataset = self.object
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        dataset_services.dataset_update(tenant=self.tenant, dataset=dataset, **data.validated_data)
        return Response(DatasetOutput(dataset).data)

    @extend_schema(summary="Delete a dataset (its storage is freed at once)",
                   responses={204: None, **problems(401, 403, 404)})
    def delete(self, request, **url):
        dataset_services.dataset_delete(tenant=self.tenant, dataset=self.object)
        return Response(status=status.HTTP_204_NO_CONTENT)


DatasetVersionUploadInput = inline_serializer("DatasetVersionUpload", fields={
    "file": serializers.FileField(help_text="CSV, TSV (also gzip-compressed) or Parquet"),
    "description": serializers.CharField(required=False, help_text="Default: the latest version's"),
    "encoding": serializers.CharField(required=False, help_text="Text encoding of a CSV/TSV file"),
})


class DatasetVersionsApi(UploadingAPI, DatasetAPI):
    """The versions of a dataset; a file posted here becomes its next version (same upload path,
    quotas and encryption as a new dataset). Any version's id names the dataset."""

    idempotent = True
    parser_classes = [MultiPartParser, FormParser]
    needs = {"GET": "view", "POST": "edit"}

    @extend_schema(summary="Every version of a dataset, newest first",
                   responses={200: DatasetOutput(many=True), **problems(401, 403, 404)})
    def get(self, request, **url):
        return Response(DatasetOutput(dataset_services.dataset_versions(dataset=self.object), many=True).data)

    @extend_schema(summary="Upload a new version of a dataset", description="Same name, owner and "
                   "shares as the latest version; models trained on earlier versions keep theirs.",
                   request={"multipart/form-data": DatasetVersionUploadInput},
                   responses={201: DatasetCreatedOutput, **problems(400, 401, 403, 404, 409, 413)})
    def post(self, request, **url):
        dataset = dataset_services.dataset_create(
            tenant=self.tenant, user=request.user, upload=request.FILES.get("file"), budget=self.upload.budget,
            description=request.data.get("description", ""), encoding=request.data.get("encoding", ""),
            version_of=self.object)
        body = DatasetOutput(dataset).data
        body["columns"] = dataset_services.dataset_profile(tenant=self.tenant, dataset=dataset)["columns"]
        return Response(body, status=status.HTTP_201_CREATED)


class DatasetPreviewApi(DatasetAPI):
    @extend_schema(summary="The first rows of a dataset", parameters=[
        OpenApiParameter("limit", int, description="Rows, 1 to 100 (default 20).")],
        responses={200: inline_serializer("DatasetPreview", fields={
            "columns": serializers.ListField(child=serializers.CharField()),
            "rows": serializers.ListField(child=serializers.ListField(
                child=serializers.CharField(allow_null=True)))}), **problems(400, 401, 403, 404)})
    def get(self, request, **url):
        dataset = self.object
        try:
            limit = min(max(int(request.query_params.get("limit", 20)), 1), 100)
        except ValueError:
            raise Problem(400, "limit must be a whole number between 1 and 100.",
                          errors=[{"field": "limit", "message": "Not a number."}])
        profile = dataset_services.dataset_profile(tenant=self.tenant, dataset=dataset)
        return Response({"columns": [c["name"] for c in profile["columns"]],
                         "rows": profile["preview"][:limit]})


class DatasetDownloadApi(DatasetAPI):
    @extend_schema(summary="The original file, decrypted as it streams",
                   responses={**file_response("The file as it was uploaded.", "text/csv",
                                              "text/tab-separated-values", "application/gzip",
                                              "application/vnd.apache.parquet"),
                              **problems(401, 403, 404)})
    def get(self, request, **url):
        dataset = self.object
        try:
            return download_response(self.tenant, dataset)
        except storage.StorageIntegrityError as exc:
            raise Problem(500, str(exc), slug="integrity-error", title="Integrity check failed")


class DatasetShareApi(ShareApi, DatasetAPI):
    permissions = DATASET_SHARING.levels


share_schema(DatasetShareApi, "Dataset")
