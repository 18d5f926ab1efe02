"""GET /datasets/?page_size=50 -> {count, next, previous, results}: the same rows, order, page and
fields as the platform's GET /api/v1/datasets/ for an admin (mlcore/apis/datasets.py), with
DRF's own pagination and a serializer of the same fields."""

from django.urls import path
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.pagination import PageNumberPagination

from bare_list.models import Dataset


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
    version = serializers.IntegerField()
    series = serializers.UUIDField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_owner(self, obj):
        return obj.owner.email if obj.owner_id else None

    def get_encoding(self, obj):
        return obj.encoding or None


class Pages(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class DatasetList(ListAPIView):
    queryset = Dataset.objects.select_related("owner")
    serializer_class = DatasetOutput
    pagination_class = Pages


urlpatterns = [path("datasets/", DatasetList.as_view())]
