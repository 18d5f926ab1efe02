"""Schedules: by the clock, score the latest version of a dataset with a model's production
version, or retrain on it and propose the new version for review (never promoted on its own).

A schedule runs as the member who made it, through the same services as the page and the API
(prediction_job_start, training_job_start), with that member's role, shares and limits as they
are when it fires: a member who lost a right or is over a quota gets a failed run with the
reason. A member removed from the workspace has their schedules paused (tenants calls
`schedules_pause_for_member` inside the removal). Timetables are cron expressions in UTC (daily
and weekly are written as one), read by Celery's own crontab.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from celery.schedules import crontab
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Min
from django.http import Http404
from django.utils import timezone
from django_tenants.utils import get_public_schema_name, schema_context

from tenants.accounts import access
from tenants.accounts.access import WRITER_ROLES, MembershipInfo, require_role
from tenants.auditing import audit
from tenants.errors import Conflict, ServiceError
from tenants.models import Tenant

from ..models import Dataset, Job, MLModel, ModelVersion, Schedule, ScheduleRun
from ..selectors import EDIT, USE, get_dataset_for_user, get_model_for_user
from .models import training_job_start
from .predictions import prediction_job_start, version_for_scoring

logger = logging.getLogger(__name__)

CRON_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")
DUE_BATCH = 100  # schedules fired per tenant per tick; the rest stay due for the next tick


@contextmanager
def _changing_schedules(tenant: Tenant) -> Iterator[None]:
    """The transaction of a change to the tenant's schedules (inside its schema): its public row
    locked first, one lock order for every writer, and its due index (`schedules_due_at`, the
    earliest unpaused next run) recomputed last. Two changes at once queue on the row, so the
    second computes after the first committed and the index is never left later than the truth."""
    with transaction.atomic():
        list(Tenant.objects.select_for_update().filter(pk=tenant.pk).values_list("pk", flat=True))
        yield
        earliest = Schedule.objects.filter(paused=False).aggregate(at=Min("next_run_at"))["at"]
        Tenant.objects.filter(pk=tenant.pk).update(schedules_due_at=earliest)
        tenant.schedules_due_at = earliest


def schedules_due_refresh(*, tenant: Tenant) -> None:
    """Recompute the tenant's due index from its schedules (inside its schema): after rows were
    written behind the services' back (a restore, an upgrade, a test)."""
    with _changing_schedules(tenant):
        pass


class TimetableInvalid(ServiceError):
    code = "invalid-timetable"


# --- timetables -----------------------------------------------------------------------------
def timetable_cron(*, frequency: str, cron: str = "", now: datetime | None = None) -> str:
    """The cron expression of a timetable: daily and weekly from the minute it was set (UTC), or
    the five-field expression given, checked. A ServiceError (400, field `cron`) names the fault."""
    now = now or timezone.now()
    if frequency == Schedule.Frequency.DAILY:
        return f"{now.minute} {now.hour} * * *"
    if frequency == Schedule.Frequency.WEEKLY:
        return f"{now.minute} {now.hour} * * {now.isoweekday() % 7}"
    if frequency != Schedule.Frequency.CRON:
        raise TimetableInvalid("frequency must be daily, weekly or cron.", field="frequency")
    expression = " ".join((cron or "").split())
    parts = expression.split(" ") if expression else []
    if len(parts) != 5:
        raise TimetableInvalid(
            f"A cron expression has five fields (minute hour day-of-month month day-of-week, e.g. "
            f"'30 6 * * 1-5'); '{expression}' has {len(parts)}.", field="cron")
    next_run_after(expression, now)  # a field out of range, or a date that never comes
    return expression


def _crontab(expression: str, now: datetime) -> crontab:
    parts = expression.split(" ")
    for name, value in zip(CRON_FIELDS, parts, strict=True):
        try:
            crontab(**{name: value})
        except ValueError as exc:
            raise TimetableInvalid(f"The {name.replace('_', ' ')} field '{value}' is not valid: {exc}",
                                   field="cron")
    try:
        return crontab(**dict(zip(CRON_FIELDS, parts, strict=True)), nowfun=lambda: now)
    except ValueError as exc:
        raise TimetableInvalid(f"'{expression}' never fires: {exc}", field="cron")


def next_run_after(expression: str, after: datetime) -> datetime:
    """The first time strictly after `after` that the expression names (UTC, whole minutes)."""
    after = after.astimezone(UTC)
    table = _crontab(expression, after)
    try:
        delta = table.remaining_estimate(after)
    except (ValueError, RuntimeError) as exc:  # fields valid alone, never together (30 February)
        raise TimetableInvalid(f"'{expression}' never fires: {exc}", field="cron")
    return (after + delta).replace(second=0, microsecond=0)


# --- writes ---------------------------------------------------------------------------------
def _check_target(*, membership: MembershipInfo, user_id: int, action: str, model: MLModel) -> None:
    """Scoring needs `use` and a production version; retraining adds versions: `edit`."""
    if action == Schedule.Action.SCORE:
        get_model_for_user(membership=membership, user_id=user_id, model_id=model.id, need=USE)
        if model.production_version_id is None:
            raise Conflict(f"{model.name} has no production version to score with.", field="model")
    elif action == Schedule.Action.RETRAIN:
        get_model_for_user(membership=membership, user_id=user_id, model_id=model.id, need=EDIT)
    else:
        raise ValidationError({"action": "action must be score or retrain."})


def schedule_create(*, tenant: Tenant, membership: MembershipInfo, user, action: str, dataset: Dataset,
                    model: MLModel, frequency: str, cron: str = "") -> Schedule:
    """`dataset` and `model` come from their access functions (view); the rights the action needs
    are checked here, and again each time it fires."""
    require_role(membership, WRITER_ROLES)
    _check_target(membership=membership, user_id=user.pk, action=action, model=model)
    now = timezone.now()
    expression = timetable_cron(frequency=frequency, cron=cron, now=now)
    schedule = Schedule(action=action, dataset=dataset, dataset_series=dataset.series, dataset_name=dataset.name,
                        model=model, model_name=model.name, frequency=frequency, cron=expression,
                        next_run_at=next_run_after(expression, now), created_by=user)
    with _changing_schedules(tenant):
        schedule.full_clean()
        schedule.save()
        audit.record("schedule.create", tenant=tenant, object_type="schedule", object_id=schedule.id,
                     details={"action": action, "dataset": dataset.id, "model": model.id, "cron": expression})
    return schedule


def schedule_update(*, tenant: Tenant, schedule: Schedule, frequency: str, cron: str = "") -> Schedule:
    now = timezone.now()
    schedule.cron = timetable_cron(frequency=frequency, cron=cron, now=now)
    schedule.frequency = frequency
    schedule.next_run_at = next_run_after(schedule.cron, now)
    with _changing_schedules(tenant):
        schedule.save(update_fields=["cron", "frequency", "next_run_at"])
        audit.record("schedule.update", tenant=tenant, object_type="schedule", object_id=schedule.id,
                     details={"cron": schedule.cron})
    return schedule


def schedule_pause(*, tenant: Tenant, schedule: Schedule, reason: str) -> Schedule:
    with _changing_schedules(tenant):
        Schedule.objects.filter(pk=schedule.pk).update(paused=True, paused_reason=reason[:300])
        schedule.paused, schedule.paused_reason = True, reason[:300]
        audit.record("schedule.pause", tenant=tenant, object_type="schedule", object_id=schedule.id,
                     details={"reason": reason[:300]})
    return schedule


def schedule_resume(*, tenant: Tenant, schedule: Schedule) -> Schedule:
    """From now on: the runs missed while paused are not made up."""
    if schedule.created_by_id is None or access.membership_for(user_id=schedule.created_by_id,
                                                               tenant=tenant) is None:
        raise Conflict("The member who made this schedule is no longer in the workspace; it runs as "
                       "them, so it cannot resume. Make a new schedule instead.")
    schedule.paused, schedule.paused_reason = False, ""
    schedule.next_run_at = next_run_after(schedule.cron, timezone.now())
    with _changing_schedules(tenant):
        schedule.save(update_fields=["paused", "paused_reason", "next_run_at"])
        audit.record("schedule.resume", tenant=tenant, object_type="schedule", object_id=schedule.id)
    return schedule


def schedule_delete(*, tenant: Tenant, schedule: Schedule) -> None:
    with _changing_schedules(tenant):
        schedule_id = schedule.id
        schedule.delete()
        audit.record("schedule.delete", tenant=tenant, object_type="schedule", object_id=schedule_id)


def schedules_pause_for_member(*, tenant: Tenant, user_id: int) -> int:
    """Called by tenants.services.membership_remove, inside its transaction."""
    with schema_context(tenant.schema_name), _changing_schedules(tenant):
        ids = list(Schedule.objects.filter(created_by_id=user_id, paused=False).values_list("id", flat=True))
        Schedule.objects.filter(pk__in=ids).update(paused=True, paused_reason="Its owner left the workspace.")
        for schedule_id in ids:
            audit.record("schedule.pause", tenant=tenant, object_type="schedule", object_id=schedule_id,
                         details={"reason": "owner removed"})
    return len(ids)


# --- firing ---------------------------------------------------------------------------------
def schedules_fire_due(*, tenant: Tenant, now: datetime | None = None) -> int:
    """Start what is due in this tenant (call inside its schema). The due rows are locked with
    SKIP LOCKED and moved to their next time in the same transaction, so two beats or workers at
    once never fire one schedule twice; a run missed by more than one period fires once."""
    now = now or timezone.now()
    with _changing_schedules(tenant):
        due = list(Schedule.objects.select_for_update(skip_locked=True, of=("self",))
                   .filter(paused=False, next_run_at__lte=now).select_related("created_by", "model")
                   .order_by("next_run_at")[:DUE_BATCH])
        for schedule in due:
            _fire(tenant, schedule, now)
    return len(due)


def _fire(tenant: Tenant, schedule: Schedule, now: datetime) -> ScheduleRun:
    due_at = schedule.next_run_at
    schedule.next_run_at = next_run_after(schedule.cron, now)
    schedule.last_run_at = now
    schedule.save(update_fields=["next_run_at", "last_run_at"])
    run = ScheduleRun(schedule=schedule, due_at=due_at, started_at=now)
    user = schedule.created_by
    membership = access.membership_for(user_id=user.pk, tenant=tenant) if user is not None else None
    if membership is None:
        schedule_pause(tenant=tenant, schedule=schedule, reason="Its owner left the workspace.")
        return _ran(tenant, run, reason="Its owner is no longer a member of the workspace.")
    actor = audit.Actor(actor_id=user.pk, actor_email=user.email, role=membership.role, auth_method="schedule")
    with audit.acting_as(actor):
        try:
            with transaction.atomic():  # a refusal leaves nothing of the attempt but the run
                run.dataset, run.job = _start(tenant, schedule, membership, user)
        except (ServiceError, ValidationError, PermissionDenied, Http404) as exc:
            return _ran(tenant, run, reason=_reason(exc))
        except Exception:
            # Not a refusal (storage unreadable, a bug): recorded and logged, and the tenant's other
            # schedules still fire; letting it escape would roll back every run of this tick.
            logger.exception("schedule run failed", extra={"schedule": schedule.id, "tenant": tenant.slug})
            return _ran(tenant, run, reason="An unexpected error stopped it; the operators have been told.")
        return _ran(tenant, run)


def _start(tenant: Tenant, schedule: Schedule, membership: MembershipInfo, user) -> tuple[Dataset, Job]:
    latest = Dataset.objects.filter(series=schedule.dataset_series).order_by("-version").first()
    if latest is None:
        raise ServiceError(f"The dataset '{schedule.dataset_name}' was deleted.")
    dataset = get_dataset_for_user(membership=membership, user_id=user.pk, dataset_id=latest.id)
    if schedule.model_id is None:
        raise ServiceError(f"The model '{schedule.model_name}' was deleted.")
    if schedule.action == Schedule.Action.SCORE:
        version = version_for_scoring(membership=membership, user_id=user.pk, model_id=schedule.model_id)
        return dataset, prediction_job_start(tenant=tenant, membership=membership, user=user, dataset=dataset,
                                             version=version)
    model = get_model_for_user(membership=membership, user_id=user.pk, model_id=schedule.model_id, need=EDIT)
    return dataset, training_job_start(tenant=tenant, membership=membership, user=user, dataset=dataset,
                                       model_name=model.name, spec=_spec_of(model), propose_only=True)


def _spec_of(model: MLModel) -> dict:
    """What to retrain: the training request of the production version (else the newest)."""
    base = (ModelVersion.objects.filter(pk=model.production_version_id).select_related("job").first()
            or model.versions.select_related("job").order_by("-version").first())
    if base is None:
        raise ServiceError(f"{model.name} has no version to retrain.")
    if base.job is not None and base.job.params.get("spec"):
        return base.job.params["spec"]
    return {"target": base.target, "features": base.features, "task": base.task, "algorithm": base.algorithm}


def _reason(exc: Exception) -> str:
    if isinstance(exc, Http404):
        return "The member who made it can no longer see the dataset or the model."
    if isinstance(exc, PermissionDenied):
        return str(exc) or "The member who made it may no longer do this."
    if isinstance(exc, ValidationError):
        return "; ".join(exc.messages)
    return str(exc)


def _ran(tenant: Tenant, run: ScheduleRun, *, reason: str = "") -> ScheduleRun:
    run.outcome = ScheduleRun.Outcome.FAILED if reason else ScheduleRun.Outcome.STARTED
    run.reason = reason[:500]
    run.save()
    audit.record("schedule.run", tenant=tenant, object_type="schedule", object_id=run.schedule_id,
                 outcome="failed" if reason else "allowed",
                 details={"job": run.job_id, "dataset": run.dataset_id, **({"reason": run.reason} if reason else {})})
    if reason:
        logger.info("schedule run refused", extra={"schedule": run.schedule_id, "tenant": tenant.slug})
    return run


def schedules_fire_all_tenants(*, now: datetime | None = None, sweep: bool | None = None) -> int:
    """The beat's tick: the due schedules of the active tenants whose due index says something is
    due (one query, not one per tenant). Once an hour (`sweep`) every active tenant is visited
    instead, which also recomputes each index: a safety net for rows written behind the services'
    back."""
    now = now or timezone.now()
    sweep = now.minute == 0 if sweep is None else sweep
    tenants = Tenant.objects.exclude(schema_name=get_public_schema_name()).filter(is_active=True)
    if not sweep:
        tenants = tenants.filter(schedules_due_at__lte=now)
    fired = 0
    for tenant in tenants.order_by("schedules_due_at", "id"):
        with schema_context(tenant.schema_name):
            try:
                fired += schedules_fire_due(tenant=tenant, now=now)
            except Exception:  # one tenant's broken schema must not stop the others' schedules
                logger.exception("schedules could not fire", extra={"tenant": tenant.slug})
    return fired

