"""The public schema: tenants, their domains and plans, global users, memberships and API tokens."""

from __future__ import annotations

import uuid

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django_tenants.models import DomainMixin, TenantMixin

# The limit keys every plan sets, in the order pages show them (docs/api.md).
LIMIT_FIELDS = (
    "storage_bytes",
    "rows_per_dataset",
    "columns_per_dataset",
    "datasets",
    "model_versions",
    "concurrent_jobs",
    "cpu_seconds",
    "memory_per_job_bytes",
    "wall_seconds_per_job",
    "predicted_rows",
    "api_requests_per_minute",
)


class Plan(models.Model):
    """A bundle of limits that operators define; every tenant has one."""

    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=80)
    description = models.CharField(max_length=300, blank=True)
    storage_bytes = models.BigIntegerField(validators=[MinValueValidator(0)])
    rows_per_dataset = models.BigIntegerField(validators=[MinValueValidator(1)])
    columns_per_dataset = models.IntegerField(validators=[MinValueValidator(1)])
    datasets = models.IntegerField(validators=[MinValueValidator(0)])
    model_versions = models.IntegerField(validators=[MinValueValidator(0)])
    concurrent_jobs = models.IntegerField(validators=[MinValueValidator(0)])
    cpu_seconds = models.BigIntegerField(
        validators=[MinValueValidator(0)], help_text="CPU-seconds of jobs per calendar month"
    )
    memory_per_job_bytes = models.BigIntegerField(validators=[MinValueValidator(64 * 1024 * 1024)])
    wall_seconds_per_job = models.IntegerField(validators=[MinValueValidator(1)])
    predicted_rows = models.BigIntegerField(
        validators=[MinValueValidator(0)], help_text="rows predicted per calendar month"
    )
    api_requests_per_minute = models.IntegerField(validators=[MinValueValidator(1)])
    fair_share_weight = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1)])

    class Meta:
        ordering = ["storage_bytes", "slug"]

    def __str__(self) -> str:
        return self.name

    def limits(self) -> dict[str, int]:
        return {field: getattr(self, field) for field in LIMIT_FIELDS}


# Keys a tenant's limit_overrides may hold: every plan limit, and the fair-share weight.
OVERRIDE_FIELDS = (*LIMIT_FIELDS, "fair_share_weight")
_INT_MAX = 2**31 - 1  # the plan's IntegerField columns
_BIG_MAX = 2**53  # the plan's BigIntegerField columns: still exact as a JSON number anywhere


def limit_bounds(key: str) -> tuple[int, int]:
    """The smallest and largest value a limit may take: the plan's own minimum (its validators),
    and the range its column can hold."""
    field = Plan._meta.get_field(key)
    low = max([v.limit_value for v in field.validators if isinstance(v, MinValueValidator)], default=0)
    return low, _BIG_MAX if isinstance(field, models.BigIntegerField) else _INT_MAX


def limit_overrides_errors(overrides) -> dict[str, str]:
    """What is wrong with a tenant's overrides, per key ({} when nothing): unknown keys, values
    that are not whole numbers, values outside limit_bounds. None or "" means "the plan's"."""
    if not isinstance(overrides, dict):
        return {"": 'Overrides are an object of limit names to whole numbers, e.g. {"cpu_seconds": 3600}.'}
    errors = {}
    for key, value in overrides.items():
        if key not in OVERRIDE_FIELDS:
            errors[key] = f"'{key}' is not a limit; use one of {', '.join(OVERRIDE_FIELDS)}."
        elif value is None or value == "":
            continue
        elif isinstance(value, bool) or not isinstance(value, int):
            errors[key] = f"{key} must be a whole number, not {value!r}."
        else:
            low, high = limit_bounds(key)
            if not low <= value <= high:
                errors[key] = f"{key} must be between {low:,} and {high:,}."
    return errors


class Tenant(TenantMixin):
    """An organisation. Its data lives in its own schema, named by the server."""

    slug = models.SlugField(max_length=30, unique=True)
    name = models.CharField(max_length=100)
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="tenants", null=True)
    limit_overrides = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    require_admin_2fa = models.BooleanField(
        "require two-factor sign-in for admins", default=False,
        help_text="Admins without a confirmed authenticator are sent to enrol before anything else.",
    )
    # The earliest next run of the tenant's unpaused schedules (mlcore.services.schedules keeps it
    # in the transaction of every change): the beat's minute tick visits only the tenants with
    # something due, with one query however many tenants there are.
    schedules_due_at = models.DateTimeField(null=True, blank=True, db_index=True, editable=False)

    auto_create_schema = True
    # The template is kept empty, so a clone copies only django_migrations rows.
    clone_mode = "DATA"

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        errors = limit_overrides_errors(self.limit_overrides or {})
        if errors:
            raise ValidationError({"limit_overrides": list(errors.values())})

    def create_schema(self, check_if_exists=False, sync_schema=True, verbosity=1):
        """Build the schema from the migrated template: its DDL replayed (constant time, see
        tenants.schema_template) or, without pg_dump, django-tenants' clone function. Either way
        the template's django_migrations rows come along, so no migration runs afterwards."""
        from django.db import connection
        from django_tenants.clone import CloneSchema
        from django_tenants.utils import get_tenant_base_schema, schema_exists

        from tenants.schema_template import create_from_template

        base = get_tenant_base_schema()
        if not sync_schema or not base or not schema_exists(base):
            return super().create_schema(check_if_exists, sync_schema, verbosity)
        if check_if_exists and schema_exists(self.schema_name):
            return False
        if not create_from_template(self.schema_name):
            CloneSchema().clone_schema(base, self.schema_name, self.clone_mode)
        connection.set_schema_to_public()
        return True

    @property
    def is_public(self) -> bool:
        return self.schema_name == "public"


class Domain(DomainMixin):
    pass


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create(self, email: str, password: str | None, **extra) -> User:
        if not email:
            raise ValueError("an e-mail address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.full_clean(exclude=["password"])
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra) -> User:
        extra.update(is_staff=True, is_superuser=True)
        return self._create(email, password, **extra)

    def get_by_natural_key(self, email: str) -> User:
        return self.get(email__iexact=email)


class User(AbstractBaseUser, PermissionsMixin):
    """A person. Global: one account can belong to several tenants."""

    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=150, blank=True)
    is_staff = models.BooleanField(default=False, help_text="platform operator")
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)
    # An e-mail when one of the person's jobs that ran over PORTAL_JOB_NOTIFY_AFTER_SECONDS ends.
    notify_job_emails = models.BooleanField(default=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["email"]
        constraints = [models.UniqueConstraint(Lower("email"), name="user_email_ci_unique")]

    def __str__(self) -> str:
        return self.email

    def get_full_name(self) -> str:
        return self.full_name or self.email

    def get_short_name(self) -> str:
        return self.full_name.split(" ")[0] if self.full_name else self.email


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"
    VIEWER = "viewer", "Viewer"
    AUDITOR = "auditor", "Auditor"


class Membership(models.Model):
    """A user's role in one tenant. No row, no access: every page and API call checks it first."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices)
    # Tighter limits an admin sets for this member, inside the tenant's plan.
    limits = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["tenant", "user__email"]
        constraints = [
            models.UniqueConstraint(fields=["user", "tenant"], name="membership_unique_user_tenant")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.tenant.slug} as {self.role}"


class TokenScope(models.TextChoices):
    READ = "read", "Read only"
    WRITE = "write", "Read and write"


class ApiToken(models.Model):
    """A bearer token for one user in one tenant. Only a SHA-256 of the secret is stored."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    # The first characters of the token, shown in lists so people can tell tokens apart.
    prefix = models.CharField(max_length=16, db_index=True)
    digest = models.CharField(max_length=64, unique=True)
    scope = models.CharField(max_length=5, choices=TokenScope.choices, default=TokenScope.READ)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def is_usable(self, now=None) -> bool:
        now = now or timezone.now()
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > now


class TenantUsage(models.Model):
    """Gauges of what a tenant holds now, kept exact by the services that change them."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="usage")
    storage_bytes = models.BigIntegerField(default=0)
    datasets = models.IntegerField(default=0)
    model_versions = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(storage_bytes__gte=0, datasets__gte=0, model_versions__gte=0),
                name="tenant_usage_non_negative",
            )
        ]

    def __str__(self) -> str:
        return f"usage of {self.tenant_id}"


class UsageDaily(models.Model):
    """Metered use per tenant, member and UTC day; months are sums of days."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="usage_days")
    user = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    day = models.DateField()
    cpu_ms = models.BigIntegerField(default=0)
    predicted_rows = models.BigIntegerField(default=0)
    api_requests = models.BigIntegerField(default=0)
    jobs = models.IntegerField(default=0)
    peak_memory_bytes = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["-day"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user", "day"], nulls_distinct=False,
                                    name="usage_daily_unique"),
        ]

    def __str__(self) -> str:
        return f"usage {self.tenant_id}/{self.user_id} {self.day}"


class AuditEntryFields(models.Model):
    """What an audit entry says, whether buffered (PendingAuditEvent) or in its chain (AuditEvent)."""

    tenant_slug = models.CharField(max_length=30, blank=True)
    ts = models.DateTimeField()
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_email = models.CharField(max_length=254, blank=True)
    role = models.CharField(max_length=10, blank=True)
    auth_method = models.CharField(max_length=10, blank=True)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    action = models.CharField(max_length=50)
    object_type = models.CharField(max_length=40, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    outcome = models.CharField(max_length=7)
    request_id = models.CharField(max_length=64, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        abstract = True


class AuditEvent(AuditEntryFields):
    """One entry of a tenant's hash chain. Append-only: the database refuses UPDATE and DELETE.

    Holds metadata only (never dataset contents), so it outlives a deleted tenant: no foreign keys.
    """

    tenant_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    seq = models.BigIntegerField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)
    # The PendingAuditEvent this entry was moved from (None for entries appended directly). Unique:
    # a buffered entry enters its chain once, whatever crashes and re-runs of the flush.
    pending_id = models.BigIntegerField(null=True, blank=True, unique=True)

    class Meta:
        ordering = ["tenant_id", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["tenant_id", "seq"], nulls_distinct=False,
                                    name="audit_event_unique_seq"),
        ]
        indexes = [
            models.Index(fields=["tenant_id", "ts"], name="audit_event_tenant_ts"),
            models.Index(fields=["tenant_id", "action"], name="audit_event_tenant_action"),
        ]

    def __str__(self) -> str:
        return f"{self.tenant_slug or 'platform'}#{self.seq} {self.action}"


class PendingAuditEvent(AuditEntryFields):
    """An access-log entry written when its request was served, not yet in its tenant's chain.

    The durable buffer of tenants/auditing/audit.py: a request commits one INSERT here (no chain
    lock) and a flush moves buffered entries into the chain in batches, in id order. The database
    refuses UPDATE and TRUNCATE, and lets a row be deleted only once the same entry is in its
    chain (migration 0011), so an entry leaves the buffer only by being appended.
    """

    id = models.BigAutoField(primary_key=True)
    tenant_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["tenant_id", "id"], name="audit_pending_chain")]

    def __str__(self) -> str:
        return f"pending {self.tenant_slug or 'platform'} {self.action} ({self.id})"


class AuditChainHead(models.Model):
    """The last entry of each chain; its row lock serialises appends so a chain never forks.

    The database lets a head only move forward onto an existing entry, and never be deleted
    (migration 0007): moving it back cannot hide entries removed from the end."""

    tenant_id = models.BigIntegerField(null=True, blank=True)
    last_seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant_id"], nulls_distinct=False, name="audit_head_unique_chain"),
        ]

    def __str__(self) -> str:
        return f"chain {self.tenant_id}: {self.last_seq}"


class AuditExport(models.Model):
    """One export of a tenant's audit entries; once its stream ends it holds the signed manifest."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    tenant_slug = models.CharField(max_length=30, blank=True)
    format = models.CharField(max_length=5)
    filters = models.JSONField(default=dict, blank=True)
    # The chain's last sequence number when the export started: nothing after it is exported.
    through_seq = models.BigIntegerField(default=0)
    first_seq = models.BigIntegerField(null=True, blank=True)
    last_seq = models.BigIntegerField(null=True, blank=True)
    count = models.BigIntegerField(default=0)
    head_hash = models.CharField(max_length=64, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    key_id = models.CharField(max_length=16, blank=True)
    signature = models.TextField(blank=True)
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_email = models.CharField(max_length=254, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"export {self.id} ({self.format})"


class AuditCheckpoint(models.Model):
    """Left by a retention purge: the chain now starts after `through_seq`, whose hash was
    `through_hash`. Signed with the platform key, so it cannot be forged to hide a deletion."""

    tenant_id = models.BigIntegerField(null=True, blank=True)
    tenant_slug = models.CharField(max_length=30, blank=True)
    through_seq = models.BigIntegerField()
    through_hash = models.CharField(max_length=64)
    purged = models.BigIntegerField()
    before = models.DateTimeField()
    actor_email = models.CharField(max_length=254, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    key_id = models.CharField(max_length=16)
    signature = models.TextField()

    class Meta:
        ordering = ["tenant_id", "-through_seq"]
        indexes = [models.Index(fields=["tenant_id", "through_seq"], name="audit_checkpoint_chain")]

    def __str__(self) -> str:
        return f"checkpoint {self.tenant_slug or 'platform'} through #{self.through_seq}"


class AuditVerification(models.Model):
    """The result of verifying one chain (daily job, command, or the verify button)."""

    run = models.UUIDField(db_index=True)
    trigger = models.CharField(max_length=10)  # schedule, command, manual
    tenant_id = models.BigIntegerField(null=True, blank=True)
    tenant_slug = models.CharField(max_length=30, blank=True)
    ok = models.BooleanField()
    entries = models.BigIntegerField(default=0)
    last_seq = models.BigIntegerField(default=0)
    head_hash = models.CharField(max_length=64, blank=True)
    first_bad_seq = models.BigIntegerField(null=True, blank=True)
    reason = models.CharField(max_length=300, blank=True)
    # Signed checkpoints (tenants/auditing/witness.py) the chain was checked against.
    checkpoints = models.IntegerField(default=0)
    actor_email = models.CharField(max_length=254, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.IntegerField(default=0)

    class Meta:
        ordering = ["-started_at", "tenant_slug"]
        indexes = [models.Index(fields=["tenant_id", "-started_at"], name="audit_verification_chain")]

    def __str__(self) -> str:
        return f"verification of {self.tenant_slug or 'platform'}: {'ok' if self.ok else 'BROKEN'}"


class TenantKey(models.Model):
    """A tenant's data key, stored only wrapped (encrypted) by a platform master key.

    Versions grow when a tenant's files are re-encrypted under a new data key; the master key that
    wraps each version changes on rotation. Deleting a tenant destroys its keys (crypto-shredding).
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="keys")
    version = models.PositiveIntegerField()
    wrapped_key = models.BinaryField()
    master_key_id = models.CharField(max_length=16, help_text="fingerprint of the wrapping master key")
    created_at = models.DateTimeField(default=timezone.now)
    rewrapped_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True, help_text="no longer used for new files")

    class Meta:
        ordering = ["tenant", "version"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "version"], name="tenant_key_unique_version"),
        ]

    def __str__(self) -> str:
        return f"key v{self.version} of {self.tenant_id}"


class JobTicket(models.Model):
    """The platform-wide ledger of jobs: what workers claim from, fairly, across tenants.

    The job itself (parameters, progress, results) lives in the tenant's schema (mlcore.Job); the
    ticket holds only what scheduling needs. Workers claim tickets under a lock, so a job runs at
    most once at a time; Celery messages are only wake-ups.
    """

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        FINISHED = "finished", "Finished"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="job_tickets")
    user = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    job_id = models.BigIntegerField()
    kind = models.CharField(max_length=20)
    queue = models.CharField(max_length=20)
    state = models.CharField(max_length=8, choices=State.choices, default=State.QUEUED)
    created_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=120, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    wait_reason = models.CharField(max_length=200, blank=True)
    cpu_ms = models.BigIntegerField(default=0)
    peak_memory_bytes = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "job_id"], name="job_ticket_unique_job"),
        ]
        indexes = [
            models.Index(fields=["queue", "state", "created_at"], name="job_ticket_queue_state"),
            models.Index(fields=["tenant", "state"], name="job_ticket_tenant_state"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} job {self.job_id} of {self.tenant_id} ({self.state})"


class RecoveryCode(models.Model):
    """One single-use code that stands in for the authenticator app at sign-in (lost phone).

    Only a SHA-256 digest is stored: the codes carry 80 random bits each, so the digest cannot be
    reversed by search, and a database reader learns nothing usable. Using a code deletes its row.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="recovery_codes")
    digest = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "digest"], name="recovery_code_unique"),
        ]

    def __str__(self) -> str:
        return f"recovery code of user {self.user_id}"


class UploadLease(models.Model):
    """What one upload in progress holds of its tenant's quotas: reserved bytes and a dataset
    slot, counted in TenantUsage. The process serving the upload (`owner`) pushes `expires_at`
    forward while it lives; a lease past it belongs to a dead process and is reaped
    (tenants/limits/leases.py), its reservation given back and its files deleted."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="upload_leases")
    storage_bytes = models.BigIntegerField(default=0, validators=[MinValueValidator(0)])
    dataset_slot = models.BooleanField(default=False)
    # The upload's object in the tenant's storage (its .part file while it streams in).
    object_id = models.UUIDField()
    owner = models.CharField(max_length=120)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["owner"], name="upload_lease_owner"),
            models.Index(fields=["expires_at"], name="upload_lease_expires"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(storage_bytes__gte=0), name="upload_lease_non_negative"),
        ]

    def __str__(self) -> str:
        return f"upload lease {self.object_id} of {self.tenant_id} ({self.owner})"


class IdempotentRequest(models.Model):
    """The first answer to a POST that carried an `Idempotency-Key`, replayed to retries with the
    same key for 24 hours (tenants/web/idempotency.py). Keys belong to one person in one tenant;
    the answer is sealed with the tenant's data key (it may hold a token's secret)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="idempotent_requests")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    # What the key was first used for: the same key on another operation or body is refused.
    operation = models.CharField(max_length=300)
    # Both empty while the first request runs (a row left so belongs to a process that died).
    request_digest = models.CharField(max_length=64, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    location = models.CharField(max_length=500, blank=True)
    sealed_body = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user", "key"], name="idempotent_request_key"),
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotent_request_created")]

    def __str__(self) -> str:
        return f"idempotent request {self.key} of {self.user_id} in {self.tenant_id}"


class WebhookEndpoint(models.Model):
    """A URL a tenant admin registered to be told of events (tenants/webhooks/).

    Public schema, keyed on the tenant, like the job ledger: events come from both schemas (jobs and
    models in the tenant's, quotas in the public one) and one sweep finds the deliveries due across
    tenants. Every read goes through tenants.webhooks.selectors, which filters on the tenant.
    The signing secret is stored only encrypted with the tenant's data key (AES-256-GCM).
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    events = models.JSONField(default=list)  # event types (tenants.webhooks.events.EVENT_TYPES)
    secret_encrypted = models.BinaryField()
    key_version = models.PositiveIntegerField()  # the tenant data-key version that encrypts it
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "active"], name="webhook_endpoint_tenant")]

    def __str__(self) -> str:
        return f"webhook {self.id} of {self.tenant_id}"


class WebhookDelivery(models.Model):
    """One event sent (or to be sent) to one endpoint, with the outcome of its last attempt."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event_type = models.CharField(max_length=40)
    event_id = models.CharField(max_length=40)  # the webhook-id header: the same on every retry
    payload = models.JSONField()
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)  # None once delivered or failed
    # When a task for the next attempt was last queued: the sweep queues a due delivery again only
    # when that is old (a lost message), not every 5 s while the webhooks queue has a backlog.
    queued_at = models.DateTimeField(null=True, blank=True)
    last_response_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["endpoint", "-created_at"], name="webhook_delivery_endpoint"),
            models.Index(fields=["next_attempt_at"], name="webhook_delivery_due",
                         condition=models.Q(next_attempt_at__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} -> {self.endpoint_id}"

    @property
    def status(self) -> str:
        if self.delivered_at:
            return "delivered"
        if self.failed_at:
            return "failed"
        return "pending"


class QuotaAlert(models.Model):
    """A quota threshold (80 or 100 percent) already announced in a month: each fires once."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    quota = models.CharField(max_length=40)
    threshold = models.PositiveSmallIntegerField()
    period_start = models.DateField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "quota", "threshold", "period_start"],
                                    name="quota_alert_once"),
        ]

    def __str__(self) -> str:
        return f"{self.quota} {self.threshold}% of {self.tenant_id} ({self.period_start})"
