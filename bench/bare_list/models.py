"""The platform's tables as they are (unmanaged): a tenant's datasets and their owners."""

from django.db import models


class Owner(models.Model):
    email = models.CharField(max_length=254)

    class Meta:
        managed = False
        db_table = "tenants_user"

    def __str__(self) -> str:
        return self.email


class Dataset(models.Model):
    name = models.CharField(max_length=200)
    description = models.TextField()
    owner = models.ForeignKey(Owner, on_delete=models.DO_NOTHING, null=True, related_name="+")
    original_filename = models.CharField(max_length=255)
    format = models.CharField(max_length=10)
    size_bytes = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    rows = models.BigIntegerField()
    column_count = models.IntegerField()
    encoding = models.CharField(max_length=40)
    everyone_permission = models.CharField(max_length=4)
    series = models.UUIDField()
    version = models.IntegerField()
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        managed = False
        db_table = "mlcore_dataset"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name
