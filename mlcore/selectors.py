"""Permission-checked reads of a tenant's schema.

One access function per resource (``get_dataset_for_user``...): it holds the role and guardian
checks and answers 404 for what the user may not see — the same 404 as for a missing row — and
PermissionDenied (403) when the user may see the object but not do this to it.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.http import Http404

from tenants.accounts.access import DATA_ROLES, WRITER_ROLES, MembershipInfo, require_role
from tenants.errors import Conflict
from tenants.models import Role

from .models import (
    Dataset,
    DatasetUserObjectPermission,
    Job,
    MLModel,
    MLModelUserObjectPermission,
    ModelVersion,
    MonitoringReport,
    PredictionOutput,
    Schedule,
    ScheduleRun,
    SearchTrial,
)

VIEW, USE, EDIT, DELETE, SHARE = "view", "use", "edit", "delete", "share"


@dataclass(frozen=True)
class ShareKind:
    """How one kind of object is shared: its ladder of levels and where grants are kept.

    A grant of a level holds every level below it (edit implies view). Per person, grants are
    guardian rows (one codename per level held); for the whole workspace, ``everyone_permission``
    on the row. The owner (a member, not a viewer) and admins hold every action, including the
    two no grant gives: delete and share.
    """

    name: str  # "dataset": audit actions, object types, messages
    model: type
    grants: type  # the direct-foreign-key guardian table
    codenames: dict[str, str]  # the ladder, lowest first: level -> codename
    related: tuple[str, ...]
    refusals: dict[str, str]  # need -> why a member who may see the object may not do this
    auditors_never_see: str  # "Auditors never see <this>" when someone tries to grant them

    @property
    def levels(self) -> tuple[str, ...]:
        return tuple(self.codenames)

    @property
    def all_actions(self) -> frozenset[str]:
        return frozenset(self.codenames) | {DELETE, SHARE}

    def level_of(self, held) -> str | None:
        """The highest level among `held` (levels or codenames), or None."""
        for level, codename in reversed(self.codenames.items()):
            if level in held or codename in held:
                return level
        return None


def _refusals(name: str, **more: str) -> dict[str, str]:
    return {**more, DELETE: f"Only the owner or an admin can delete this {name}.",
            SHARE: f"Only the owner or an admin can share this {name}."}


DATASET_SHARING = ShareKind(
    name="dataset", model=Dataset, grants=DatasetUserObjectPermission,
    codenames={VIEW: "view_dataset", EDIT: "change_dataset"}, related=("owner",),
    refusals=_refusals("dataset", edit="You can view this dataset but not change it."),
    auditors_never_see="dataset contents",
)
MODEL_SHARING = ShareKind(
    name="model", model=MLModel, grants=MLModelUserObjectPermission,
    codenames={VIEW: "view_mlmodel", USE: "use_mlmodel", EDIT: "change_mlmodel"},
    related=("owner", "production_version"),
    refusals=_refusals("model", use="You can view this model but not use it for predictions.",
                       edit="You can use this model but not change it."),
    auditors_never_see="models",
)
_KINDS = {Dataset: DATASET_SHARING, MLModel: MODEL_SHARING}


def share_kind(obj) -> ShareKind:
    return _KINDS[type(obj)]


def _shared_list(kind: ShareKind, *, membership: MembershipInfo, user_id: int, need: str = VIEW) -> QuerySet:
    """What this member holds at least `need` on (a level of the kind's ladder), in one query:
    admins all; others their own and what is shared with them at that level or above (the same
    rules as object_actions, as SQL)."""
    require_role(membership, DATA_ROLES)
    rows = kind.model.objects.select_related(*kind.related)
    if membership.role == Role.ADMIN:
        return rows
    if need != VIEW and membership.role not in WRITER_ROLES:
        return rows.none()  # viewers hold "view" at most
    levels = kind.levels[kind.levels.index(need):]
    granted = kind.grants.objects.filter(content_object=OuterRef("pk"), user_id=user_id,
                                         permission__codename__in=[kind.codenames[lv] for lv in levels])
    visible = Q(everyone_permission__in=levels) | Q(Exists(granted))
    if membership.role in WRITER_ROLES:
        visible |= Q(owner_id=user_id)
    return rows.filter(visible)


def object_actions(*, membership: MembershipInfo, user_id: int, obj) -> frozenset[str]:
    """What this member may do to this dataset or model: a subset of its kind's all_actions."""
    kind = share_kind(obj)
    role = membership.role
    if role == Role.ADMIN or (role in WRITER_ROLES and obj.owner_id == user_id):
        return kind.all_actions
    if role not in DATA_ROLES:
        return frozenset()
    held = set(kind.grants.objects.filter(content_object=obj, user_id=user_id)
               .values_list("permission__codename", flat=True))
    if obj.everyone_permission:
        held.add(obj.everyone_permission)
    level = kind.level_of(held)
    if level is None:
        return frozenset()
    # Viewers hold "view" at most, whatever was granted before a role change.
    if role not in WRITER_ROLES:
        level = VIEW
    return frozenset(kind.levels[: kind.levels.index(level) + 1])


def _get_for_user(kind: ShareKind, *, membership: MembershipInfo, user_id: int, object_id, need: str):
    require_role(membership, DATA_ROLES)
    try:
        obj = kind.model.objects.select_related(*kind.related).get(pk=int(object_id))
    except (kind.model.DoesNotExist, TypeError, ValueError):
        raise Http404
    actions = object_actions(membership=membership, user_id=user_id, obj=obj)
    if VIEW not in actions:
        raise Http404
    if need not in actions:
        raise PermissionDenied(kind.refusals.get(need, "You may not do this."))
    obj.allowed_actions = actions
    return obj


def object_grants(*, obj) -> list[dict]:
    """[{"email", "permission"}] per person, plus {"everyone": true, ...} for a workspace share."""
    kind = share_kind(obj)
    by_user: dict[str, set[str]] = {}
    rows = (kind.grants.objects.filter(content_object=obj)
            .select_related("user", "permission").order_by("user__email"))
    for row in rows:
        by_user.setdefault(row.user.email, set()).add(row.permission.codename)
    grants = [{"email": email, "permission": kind.level_of(codes) or VIEW} for email, codes in by_user.items()]
    if obj.everyone_permission:
        grants.append({"everyone": True, "permission": obj.everyone_permission})
    return grants


# --- datasets and models: the named access functions -------------------------------------------
def _narrowed(rows: QuerySet, *, user_id: int, search: str = "", owner: str = "") -> QuerySet:
    """The list filters shared by datasets and models, applied only on top of what the member may
    see, so a filter can narrow the list but never widen it: `search` in the name or description,
    `owner` "me" or "others"."""
    if search:
        rows = rows.filter(Q(name__icontains=search) | Q(description__icontains=search))
    if owner == "me":
        rows = rows.filter(owner_id=user_id)
    elif owner == "others":
        rows = rows.exclude(owner_id=user_id)
    return rows


def dataset_list(*, membership: MembershipInfo, user_id: int, search: str = "", owner: str = "") -> QuerySet[Dataset]:
    rows = _shared_list(DATASET_SHARING, membership=membership, user_id=user_id)
    return _narrowed(rows, user_id=user_id, search=search, owner=owner)


def get_dataset_for_user(*, membership: MembershipInfo, user_id: int, dataset_id, need: str = VIEW) -> Dataset:
    return _get_for_user(DATASET_SHARING, membership=membership, user_id=user_id, object_id=dataset_id,
                         need=need)


def model_list(*, membership: MembershipInfo, user_id: int, need: str = VIEW, search: str = "",
               owner: str = "", task: str = "", in_production: str = "") -> QuerySet[MLModel]:
    """The models the member may view, or (need=USE) use for predictions; narrowed by the list
    filters (`task` classification/regression, `in_production` "yes"/"no")."""
    rows = _shared_list(MODEL_SHARING, membership=membership, user_id=user_id, need=need)
    rows = _narrowed(rows, user_id=user_id, search=search, owner=owner)
    if task:
        rows = rows.filter(task=task)
    if in_production:
        rows = rows.filter(production_version__isnull=in_production != "yes")
    return rows


def default_scoring_version_id(*, models: list[MLModel], user_id: int) -> int | None:
    """The version the predict forms offer first, among `models` (versions prefetched): the
    production version of the model this member last scored with, else of the model trained most
    recently; None when none of them has a production version."""
    in_production = {m.id: m.production_version_id for m in models if m.production_version_id}
    last_used = (Job.objects.filter(kind=Job.Kind.PREDICTION, created_by_id=user_id)
                 .order_by("-created_at", "-id").values_list("params__model", flat=True).first())
    if last_used in in_production:
        return in_production[last_used]
    trained = [(max(v.created_at for v in m.versions.all()), m.id) for m in models
               if m.id in in_production and m.versions.all()]
    return in_production[max(trained)[1]] if trained else None


def model_actions(*, membership: MembershipInfo, user_id: int, model: MLModel) -> frozenset[str]:
    return object_actions(membership=membership, user_id=user_id, obj=model)


def get_model_for_user(*, membership: MembershipInfo, user_id: int, model_id, need: str = VIEW) -> MLModel:
    return _get_for_user(MODEL_SHARING, membership=membership, user_id=user_id, object_id=model_id, need=need)


def get_model_version_for_user(*, membership: MembershipInfo, user_id: int, version_id,
                               need: str = VIEW) -> ModelVersion:
    require_role(membership, DATA_ROLES)
    try:
        version = ModelVersion.objects.select_related("model").get(pk=int(version_id))
    except (ModelVersion.DoesNotExist, TypeError, ValueError):
        raise Http404
    # The version's rights are its model's rights.
    model = get_model_for_user(membership=membership, user_id=user_id, model_id=version.model_id, need=need)
    version.model = model
    return version


def model_versions_compared(*, model: MLModel, version_ids) -> list[ModelVersion]:
    """The versions of `model` (already access-checked) among `version_ids`, oldest first;
    ids that are not whole numbers or not this model's are left out."""
    ids = {int(v) for v in version_ids if str(v).isdigit()}
    return list(model.versions.filter(pk__in=ids).select_related("created_by").order_by("version"))


def monitoring_reports(*, version: ModelVersion, days: int | None = None) -> QuerySet[MonitoringReport]:
    """The daily monitoring reports of `version` (already resolved by get_model_version_for_user),
    newest first; `days`: only the latest so many."""
    rows = MonitoringReport.objects.filter(model_version=version).order_by("-day")
    return rows[:days] if days else rows


# --- jobs --------------------------------------------------------------------------------------
def job_list(*, membership: MembershipInfo, user_id: int, status: str = "", kind: str = "",
             who: str = "") -> QuerySet[Job]:
    """Admins see every job; members their own. Viewers run no jobs (403). The filters narrow that:
    `status`, `kind`, and `who` (part of the starter's e-mail address)."""
    require_role(membership, WRITER_ROLES)
    rows = Job.objects.select_related("created_by", "dataset")
    if membership.role != Role.ADMIN:
        rows = rows.filter(created_by_id=user_id)
    if status:
        rows = rows.filter(status=status)
    if kind:
        rows = rows.filter(kind=kind)
    if who:
        rows = rows.filter(created_by__email__icontains=who)
    return rows


def get_job_for_user(*, membership: MembershipInfo, user_id: int, job_id) -> Job:
    rows = job_list(membership=membership, user_id=user_id)
    try:
        return rows.get(pk=int(job_id))
    except (Job.DoesNotExist, TypeError, ValueError):
        raise Http404


def get_search_for_user(*, membership: MembershipInfo, user_id: int, search_id) -> Job:
    """A model search (a Job of kind "search") the member may see, its trials prefetched: admins
    any, members their own; 404 for anything else, as for a job they may not see."""
    rows = (job_list(membership=membership, user_id=user_id).filter(kind=Job.Kind.SEARCH)
            .prefetch_related(Prefetch("trials", queryset=SearchTrial.objects.order_by("number"))))
    try:
        return rows.get(pk=int(search_id))
    except (Job.DoesNotExist, TypeError, ValueError):
        raise Http404


def get_prediction_output_for_user(*, membership: MembershipInfo, user_id: int, job_id) -> PredictionOutput:
    """The output of a prediction job the member may see: 404 for any other job (as for a job
    they may not see), a Conflict (409) until the job has succeeded."""
    job = get_job_for_user(membership=membership, user_id=user_id, job_id=job_id)
    if job.kind != Job.Kind.PREDICTION:
        raise Http404
    output = PredictionOutput.objects.filter(job=job).first()
    if job.status != Job.Status.SUCCEEDED or output is None:
        raise Conflict(f"This job has no result yet (it is {job.status}).")
    return output


# --- lineage: dataset -> model versions -> prediction jobs ---------------------------------------
LINEAGE_ROWS = 50


@dataclass(frozen=True)
class Lineage:
    """What came from a dataset or a model version, as far as this member may see it."""

    versions: list  # ModelVersion rows trained on the dataset (models the member may view)
    prediction_jobs: list  # Job rows (the member's own; every one for admins); None for viewers
    more_versions: bool = False
    more_jobs: bool = False


def _visible_jobs(*, membership: MembershipInfo, user_id: int) -> QuerySet[Job] | None:
    if membership.role not in WRITER_ROLES:
        return None  # viewers see no jobs at all (job_list refuses them)
    return job_list(membership=membership, user_id=user_id).filter(kind=Job.Kind.PREDICTION)


def _first(rows, n: int = LINEAGE_ROWS) -> tuple[list, bool]:
    taken = list(rows[: n + 1])
    return taken[:n], len(taken) > n


def dataset_lineage(*, membership: MembershipInfo, user_id: int, dataset: Dataset) -> Lineage:
    """The versions trained on `dataset` (already access-checked) and the prediction jobs that
    scored it, newest first."""
    models = model_list(membership=membership, user_id=user_id)
    versions, more_versions = _first(ModelVersion.objects.filter(dataset=dataset, model__in=models)
                                     .select_related("model").order_by("-created_at", "-id"))
    jobs = _visible_jobs(membership=membership, user_id=user_id)
    more_jobs = False
    if jobs is not None:
        jobs, more_jobs = _first(jobs.filter(dataset=dataset).order_by("-created_at", "-id"))
    return Lineage(versions=versions, prediction_jobs=jobs, more_versions=more_versions,
                   more_jobs=more_jobs)


def version_lineage(*, membership: MembershipInfo, user_id: int, version: ModelVersion) -> Lineage:
    """The prediction jobs that scored with `version` (already access-checked), newest first."""
    jobs = _visible_jobs(membership=membership, user_id=user_id)
    more_jobs = False
    if jobs is not None:
        jobs, more_jobs = _first(jobs.filter(params__model_version=version.id)
                                 .select_related("dataset").order_by("-created_at", "-id"))
    return Lineage(versions=[], prediction_jobs=jobs, more_jobs=more_jobs)


# --- schedules ---------------------------------------------------------------------------------
def schedule_list(*, membership: MembershipInfo, user_id: int, dataset_series=None,
                  model_id=None) -> QuerySet[Schedule]:
    """Admins see every schedule; members their own (a schedule acts as its maker). Viewers make
    none (403). Narrowed to one dataset's series or one model when given."""
    require_role(membership, WRITER_ROLES)
    rows = Schedule.objects.select_related("created_by", "dataset", "model")
    if membership.role != Role.ADMIN:
        rows = rows.filter(created_by_id=user_id)
    if dataset_series is not None:
        rows = rows.filter(dataset_series=dataset_series)
    if model_id is not None:
        rows = rows.filter(model_id=model_id)
    return rows


def get_schedule_for_user(*, membership: MembershipInfo, user_id: int, schedule_id) -> Schedule:
    try:
        return schedule_list(membership=membership, user_id=user_id).get(pk=int(schedule_id))
    except (Schedule.DoesNotExist, TypeError, ValueError):
        raise Http404


def schedule_runs(*, schedule: Schedule) -> QuerySet[ScheduleRun]:
    """The runs of a schedule (already access-checked), newest first, with their jobs."""
    return schedule.runs.select_related("job", "dataset").order_by("-started_at", "-id")
