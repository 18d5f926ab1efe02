"""Predictions: batch jobs and their outputs, and the online endpoint (the hot path)."""

from __future__ import annotations

from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.response import Response

from tenants.web.api import FastJSONParser, JSONFirstNegotiation, ObjectAPI, TenantAPI
from tenants.web.inputs import JSONInput, text
from tenants.web.openapi import OpenApiTypes, component_rules, file_response, problems
from tenants.web.problems import Problem

from ..responses import prediction_download
from ..selectors import get_dataset_for_user, get_prediction_output_for_user
from ..services import predictions as prediction_services
from .jobs import JobOutput


class PredictionJobCreateApi(TenantAPI):
    idempotent = True

    @extend_schema_serializer(component_name="PredictionJobInput")
    class InputSerializer(JSONInput):
        dataset = serializers.IntegerField()
        model = serializers.IntegerField(required=False, help_text="Scores with its production version")
        model_version = serializers.IntegerField(required=False, help_text="Wins when both are given")
        id_column = text(max_length=300, required=False, allow_blank=True)

    @extend_schema(summary="Score a whole dataset (a job)", description="Give `model` (its production "
                   "version) or `model_version` (422 with neither).", request=InputSerializer,
                   responses={202: JobOutput, **problems(400, 401, 403, 404, 422, 429)})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        dataset = get_dataset_for_user(membership=self.membership, user_id=request.user.pk,
                                       dataset_id=values["dataset"])
        version = prediction_services.version_for_scoring(
            membership=self.membership, user_id=request.user.pk, model_id=values.get("model"),
            version_id=values.get("model_version"))
        job = prediction_services.prediction_job_start(
            tenant=self.tenant, membership=self.membership, user=request.user, dataset=dataset,
            version=version, id_column=values.get("id_column") or None)
        return Response(JobOutput(job, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)


class PredictionOutputAPI(ObjectAPI):
    """An endpoint on the output of the prediction job of the URL, resolved once into self.object."""

    url_kwarg = "job_id"
    needs = {"GET": "view"}

    def resolve(self, job_id, need):
        return get_prediction_output_for_user(membership=self.membership, user_id=self.request.user.pk,
                                              job_id=job_id)


component_rules("PredictionJobInput", anyOf=[{"required": ["model"]}, {"required": ["model_version"]}])


class JobResultApi(PredictionOutputAPI):
    @extend_schema(summary="A prediction job's output", parameters=[
        OpenApiParameter("format", str, enum=["csv", "parquet"], description="Default csv.")],
        responses={**file_response("Row number, the id column if chosen, prediction and class "
                                   "probabilities.", "text/csv", "application/vnd.apache.parquet"),
                   **problems(400, 401, 403, 404, 409)})
    def get(self, request, **url):
        output = self.object
        fmt = request.query_params.get("format", "csv")
        if fmt not in ("csv", "parquet"):
            raise Problem(400, "format must be csv or parquet.",
                          errors=[{"field": "format", "message": "Use csv or parquet."}])
        return prediction_download(self.tenant, output, fmt)


class JobErrorsApi(PredictionOutputAPI):
    @extend_schema(summary="Rows a prediction job could not score, with row, column and reason",
                   responses={**file_response("CSV of refused rows.", "text/csv"),
                              **problems(401, 403, 404, 409)})
    def get(self, request, **url):
        return prediction_download(self.tenant, self.object, "errors")


class JobReceiptApi(PredictionOutputAPI):
    @extend_schema(summary="The signed receipt binding input, model and output",
                   responses={200: OpenApiTypes.OBJECT, **problems(401, 403, 404, 409)})
    def get(self, request, **url):
        return Response(self.object.receipt)


@extend_schema_serializer(component_name="PredictionExplanation")
class ExplanationOutput(serializers.Serializer):
    """How each input column moved one prediction: baseline + sum(contributions) == output."""

    method = serializers.ChoiceField(["linear", "tree_shap", "saabas"], help_text=(
        "linear: exact, coefficient x (value - training mean); tree_shap: exact Shapley values of "
        "the trees (shap's TreeExplainer); saabas: path attribution, for trees too large for "
        "tree_shap to take a few milliseconds"))
    scale = serializers.ChoiceField(["log-odds", "probability", "value"], help_text=(
        "What output and baseline measure: the explained class's log-odds (its linear or raw score "
        "with more than two classes), its probability (random forests), or the predicted value"))
    class_ = serializers.JSONField(allow_null=True, help_text="The class explained (the prediction); null for regression")
    baseline = serializers.FloatField(help_text="The model's output for an average training row")
    output = serializers.FloatField(help_text="The model's output for this row, on `scale`")
    contributions = serializers.ListField(child=inline_serializer("FeatureContribution", fields={
        "feature": serializers.CharField(), "value": serializers.JSONField(allow_null=True),
        "contribution": serializers.FloatField()}), help_text="One per input column, largest |contribution| first")

    def get_fields(self):
        fields = super().get_fields()
        fields["class"] = fields.pop("class_")
        return fields


class ModelPredictApi(TenantAPI):
    """The hot path: no PostgreSQL statement when warm (see mlcore/services/predictions.py)."""

    audit_exempt = True  # counted per (token, version, minute) instead: docs/api.md
    posts_change_nothing = True  # scoring rows: a read-scoped token may call it
    # DRF's JSON parsing and negotiation, minus per-call set-up (tenants/web/api.py): ~10 µs a call.
    parser_classes = [FastJSONParser]
    content_negotiation_class = JSONFirstNegotiation

    @extend_schema(
        summary="Predict a few rows online", description=f"Up to {prediction_services.ONLINE_MAX_ROWS} "
        "rows; `version` picks a version number, else the production version answers.",
        request=inline_serializer("OnlinePredictionInput", fields={
            "rows": serializers.ListField(child=serializers.DictField(), min_length=1, help_text=(
                f"At least one row; more than {prediction_services.ONLINE_MAX_ROWS} is a 413")),
            "version": serializers.IntegerField(required=False, allow_null=True,
                                                help_text="A version number; absent or null: production"),
            "explain": serializers.BooleanField(required=False, default=False, help_text=(
                "true: each prediction comes with its explanation (at most "
                f"{prediction_services.EXPLAIN_MAX_ROWS} rows, else 413; 422 for a version that "
                "cannot be explained)"))}),
        responses={200: inline_serializer("OnlinePrediction", fields={
            "model_version": serializers.IntegerField(), "version": serializers.IntegerField(),
            "predictions": serializers.ListField(child=serializers.JSONField()),
            "probabilities": serializers.ListField(child=serializers.DictField(), required=False),
            "explanations": serializers.ListField(child=ExplanationOutput(), required=False, help_text=(
                "With explain: true, one per prediction, in the same order"))}),
            **problems(400, 401, 403, 404, 413, 422, 429)})
    def post(self, request, model_id):
        data = request.data if isinstance(request.data, dict) else {}
        result = prediction_services.online_predict(
            tenant=self.tenant, membership=self.membership, user_id=request.user.pk,
            token_id=getattr(request.auth, "id", None), gate_result=request._request.gate,
            model_id=model_id, rows=data.get("rows"), version_number=data.get("version"),
            explain=data.get("explain", False))
        if result["probabilities"] is None:
            del result["probabilities"]
        return Response(result)
