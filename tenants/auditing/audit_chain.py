"""Checking the audit chains, and the operators' retention purge.

``chain_verify`` walks one chain in sequence order and reports the first entry that does not hold:
an edited entry (its hash no longer matches), a deleted one (a gap in the sequence), an inserted one
(two entries linking to the same predecessor) or reordered ones (an entry's hash was computed for
another place). It also checks the chain against every signed checkpoint of it kept outside the
database (tenants/auditing/witness.py), which catches what recomputed hashes hide: entries removed
from the end with the head moved back, or history rewritten before a checkpoint. The verify button,
``manage.py verify_audit`` and the daily task all call ``chains_verify``, which keeps each result for
the operator page and, for an intact chain, writes a new checkpoint of its head.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from tenants.auditing import audit, witness
from tenants.crypto import signing
from tenants.errors import Conflict
from tenants.models import (
    AuditChainHead,
    AuditCheckpoint,
    AuditEvent,
    AuditVerification,
    PendingAuditEvent,
    Tenant,
)

logger = logging.getLogger(__name__)

CHUNK = 5_000


@dataclass
class ChainResult:
    tenant_id: int | None
    tenant_slug: str
    ok: bool
    entries: int = 0
    last_seq: int = 0
    head_hash: str = ""
    first_bad_seq: int | None = None
    reason: str = ""
    checkpoints: int = 0  # signed checkpoints the chain was checked against

    def describe(self) -> str:
        name = self.tenant_slug or "platform"
        if self.ok:
            return (f"{name}: intact, {self.entries} entries, head #{self.last_seq} {self.head_hash[:12]}, "
                    f"{self.checkpoints} signed checkpoint(s) matched")
        return f"{name}: BROKEN at #{self.first_bad_seq}: {self.reason}"


class _Break(Exception):
    def __init__(self, seq: int, reason: str):
        super().__init__(reason)
        self.seq = seq
        self.reason = reason


def chain_verify(*, tenant_id: int | None) -> ChainResult:
    """Verify one chain from its start (or its last signed checkpoint) to its head (buffered
    access entries moved into it first)."""
    audit.flush_pending(tenant_id=tenant_id)
    slug = audit.tenant_slug_of(tenant_id) if tenant_id is not None else ""
    result = ChainResult(tenant_id=tenant_id, tenant_slug=slug, ok=True)
    rows = (AuditEvent.objects.filter(tenant_id=tenant_id).order_by("seq")
            .values_list(*audit.ROW_COLUMNS).iterator(chunk_size=CHUNK))
    try:
        purge = _latest_purge(tenant_id)
        expected_seq, expected_prev = ((purge.through_seq + 1, purge.through_hash) if purge
                                       else (1, audit.GENESIS_HASH))
        witnessed = _witnessed(tenant_id, purge, result)
        walk = _walk(rows, expected_seq, expected_prev, result, witnessed)
        _check_head(tenant_id, walk, result)
        _check_reach(witnessed, result)
    except _Break as broken:
        result.ok = False
        result.first_bad_seq = broken.seq
        result.reason = broken.reason
    return result


def _latest_purge(tenant_id: int | None) -> AuditCheckpoint | None:
    """The latest retention checkpoint (the chain starts after it), its signature checked."""
    checkpoint = AuditCheckpoint.objects.filter(tenant_id=tenant_id).order_by("-through_seq").first()
    if checkpoint is not None and not signing.verify(checkpoint_body(checkpoint)):
        raise _Break(checkpoint.through_seq + 1, f"the purge checkpoint through #{checkpoint.through_seq} "
                                                 "has an invalid signature")
    return checkpoint


def _witnessed(tenant_id: int | None, purge: AuditCheckpoint | None,
               result: ChainResult) -> dict[int, list[witness.Checkpoint]]:
    """The signed checkpoints the remaining entries must match, by seq.

    A checkpoint at or below the retention purge point witnessed entries that were lawfully
    deleted: ``audit_purge`` verifies the whole chain (these checkpoints included) before it cuts,
    and its own signed checkpoint names the last entry it removed. So one at the purge point must
    carry the purge checkpoint's hash, and those below it are covered by that signature.
    """
    purged_through = purge.through_seq if purge is not None else 0
    plan: dict[int, list[witness.Checkpoint]] = {}
    for checkpoint in witness.checkpoint_list(tenant_id):
        problem = witness.checkpoint_problem(checkpoint, tenant_id)
        if problem:
            raise _Break(checkpoint.seq, problem)
        if checkpoint.seq > purged_through:
            plan.setdefault(checkpoint.seq, []).append(checkpoint)
            continue
        if purge is not None and checkpoint.seq == purged_through and checkpoint.hash != purge.through_hash:
            raise _Break(checkpoint.seq, f"the purge checkpoint through #{checkpoint.seq} does not match "
                                         f"the signed checkpoint of {checkpoint.at}")
        result.checkpoints += 1
    return plan


def _walk(rows, expected_seq: int, expected_prev: str, result: ChainResult,
          witnessed: dict[int, list[witness.Checkpoint]]) -> tuple[int, str]:
    """Check each entry against its own hash, its predecessor and the checkpoints that witnessed
    it; returns (next seq, last hash)."""
    before_prev = None  # the predecessor's prev_hash: two equal prev_hashes mean an insertion
    matched = expected_seq - 1  # the last seq a checkpoint confirmed (or the chain's start)
    for row in rows:
        entry = audit.entry_from_row(row)
        seq = entry["seq"]
        if seq > expected_seq:
            raise _Break(expected_seq, f"entry #{expected_seq} is missing (next is #{seq})")
        if seq < expected_seq:
            raise _Break(seq, f"entry #{seq} appears out of order after #{expected_seq - 1}")
        if entry["prev_hash"] != expected_prev:
            if before_prev is not None and entry["prev_hash"] == before_prev:
                raise _Break(seq - 1, f"entry #{seq - 1} was inserted: #{seq} links to the entry before it")
            raise _Break(seq, f"entry #{seq} does not link to #{seq - 1} (prev_hash differs)")
        if audit.entry_hash(entry) != entry["hash"]:
            raise _Break(seq, f"entry #{seq} was altered or moved (its hash does not match its content)")
        for checkpoint in witnessed.get(seq, ()):
            if checkpoint.hash != entry["hash"]:
                raise _Break(seq, f"entry #{seq} does not match the signed checkpoint of {checkpoint.at}: "
                                  f"the chain was rewritten after #{matched} and its hashes recomputed")
            result.checkpoints += 1
            matched = seq
        before_prev = entry["prev_hash"]
        expected_prev = entry["hash"]
        expected_seq = seq + 1
        result.entries += 1
    return expected_seq, expected_prev


def _check_head(tenant_id: int | None, walk: tuple[int, str], result: ChainResult) -> None:
    """Entries removed from the end leave no gap: the chain head still remembers them."""
    next_seq, last_hash = walk
    result.last_seq, result.head_hash = next_seq - 1, last_hash
    head = AuditChainHead.objects.filter(tenant_id=tenant_id).first()
    if head is None or head.last_seq == result.last_seq and head.last_hash == last_hash:
        return
    if head.last_seq > result.last_seq:
        raise _Break(next_seq, f"entries #{next_seq}..#{head.last_seq} are missing from the end")
    raise _Break(result.last_seq, f"entry #{result.last_seq} is not the chain head the database "
                                  f"recorded (#{head.last_seq})")


def _check_reach(witnessed: dict[int, list[witness.Checkpoint]], result: ChainResult) -> None:
    """A checkpoint saw the chain longer than it is now: its end was cut and the head moved back."""
    if not witnessed or max(witnessed) <= result.last_seq:
        return
    highest = max(witnessed)
    raise _Break(result.last_seq + 1, f"the chain ends at #{result.last_seq} but a signed checkpoint of "
                                      f"{witnessed[highest][0].at} witnessed #{highest}")


def chain_ids() -> list[int | None]:
    """Every chain, including the platform's (None) and those of deleted tenants."""
    ids = set(AuditChainHead.objects.values_list("tenant_id", flat=True))
    ids |= set(AuditEvent.objects.values_list("tenant_id", flat=True).distinct())
    return sorted(ids, key=lambda v: (v is not None, v or 0))


def chain_id_of(slug: str) -> int | None:
    """The chain of the tenant called `slug`, also of a deleted one (its entries, appended or
    buffered, keep the slug); None when nothing goes by that name."""
    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is not None:
        return tenant.id
    for model in (AuditEvent, PendingAuditEvent):
        found = model.objects.filter(tenant_slug=slug).values_list("tenant_id", flat=True).first()
        if found is not None:
            return found
    return None


def chains_verify(*, tenant_ids: list[int | None] | None = None, trigger: str = "manual",
                  actor_email: str = "") -> list[ChainResult]:
    """Verify the given chains (default: all) and keep each result (AuditVerification)."""
    run = uuid.uuid4()
    results = []
    for tenant_id in chain_ids() if tenant_ids is None else tenant_ids:
        started, t0 = timezone.now(), time.monotonic()
        result = chain_verify(tenant_id=tenant_id)
        AuditVerification.objects.create(
            run=run, trigger=trigger, tenant_id=tenant_id, tenant_slug=result.tenant_slug,
            ok=result.ok, entries=result.entries, last_seq=result.last_seq,
            head_hash=result.head_hash, first_bad_seq=result.first_bad_seq,
            reason=result.reason[:300], checkpoints=result.checkpoints, actor_email=actor_email,
            started_at=started, duration_ms=int((time.monotonic() - t0) * 1000),
        )
        if result.ok:  # witness what was just proved, so later rewrites cannot undo it
            witness.checkpoint_record(tenant_id=tenant_id, tenant_slug=result.tenant_slug,
                                      seq=result.last_seq, entry_hash=result.head_hash, reason="verify")
        if not result.ok:
            logger.error("audit chain broken", extra={"tenant": result.tenant_slug,
                                                      "seq": result.first_bad_seq,
                                                      "reason": result.reason})
        results.append(result)
    return results


# --- retention purge ----------------------------------------------------------------------------
def checkpoint_body(checkpoint: AuditCheckpoint) -> dict:
    """The signed form of a checkpoint."""
    return {
        "tenant_id": checkpoint.tenant_id, "tenant": checkpoint.tenant_slug,
        "through_seq": checkpoint.through_seq, "through_hash": checkpoint.through_hash,
        "purged": checkpoint.purged, "before": audit.format_ts(checkpoint.before),
        "created_at": audit.format_ts(checkpoint.created_at), "key_id": checkpoint.key_id,
        "signature": checkpoint.signature,
    }


def audit_purge(*, tenant_id: int | None, before: datetime, actor_email: str = "") -> AuditCheckpoint | None:
    """Delete a chain's entries older than `before` (retention), leaving a signed checkpoint.

    Only whole prefixes go: the chain then starts at the checkpoint, which names the last purged
    entry and its hash, so verification still proves nothing was removed from what is left.
    A chain that does not verify (against its signed checkpoints too) is not purged: the purge
    checkpoint then vouches for the witnessed checkpoints it covers (``_witnessed``).
    The entries are deleted by ``portal_audit_purge()``, a SECURITY DEFINER function of the
    `portal_audit` database role (migration 0007), which deletes only a prefix that the checkpoint
    saved here names; the application's runtime role has no EXECUTE on it (README "Database roles").
    """
    if timezone.is_naive(before):
        raise ValidationError({"before": "Give an aware date-time."})
    verified = chain_verify(tenant_id=tenant_id)
    if not verified.ok:
        raise Conflict(f"The audit chain is broken at entry #{verified.first_bad_seq} "
                       f"({verified.reason}): it is not purged.", code="audit_chain_broken")
    with transaction.atomic():
        audit._lock_head(tenant_id)  # no append while the prefix is cut
        last = (AuditEvent.objects.filter(tenant_id=tenant_id, ts__lt=before).order_by("-seq")
                .values("seq", "hash", "tenant_slug").first())
        if last is None:
            return None
        doomed = AuditEvent.objects.filter(tenant_id=tenant_id, seq__lte=last["seq"])
        checkpoint = AuditCheckpoint(
            tenant_id=tenant_id, tenant_slug=last["tenant_slug"], through_seq=last["seq"],
            through_hash=last["hash"], purged=doomed.count(), before=before,
            actor_email=actor_email, created_at=timezone.now(), key_id=signing.key_id(),
            signature="",
        )
        checkpoint.signature = signing.sign(checkpoint_body(checkpoint))
        checkpoint.save()
        with connection.cursor() as cursor:
            cursor.execute("SELECT portal_audit_purge(%s, %s)", [tenant_id, checkpoint.through_seq])
    audit.record("audit.purge", tenant=_tenant_or_none(tenant_id), object_type="audit_checkpoint",
                 object_id=checkpoint.id, details={"through_seq": checkpoint.through_seq,
                                                   "purged": checkpoint.purged,
                                                   "before": audit.format_ts(before)})
    return checkpoint


def _tenant_or_none(tenant_id: int | None):
    from tenants.models import Tenant

    return Tenant.objects.filter(pk=tenant_id).first() if tenant_id is not None else None
