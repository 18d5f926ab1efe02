"""Signed checkpoints of the chain heads, kept outside the database they witness.

A hash chain alone proves nothing to someone who can rewrite it: a database superuser may delete the
last entries and move the head back, or edit an entry and recompute every later hash. So every
verification (``chains_verify``: the command, the verify buttons, the daily task), every export
manifest and a periodic task (``tenants.audit_witness_heads``) append a checkpoint — tenant, seq, hash,
time, Ed25519 signature (tenants/crypto/signing.py) — to a JSON Lines file per chain under
PORTAL_AUDIT_WITNESS_DIR (default: ``<PORTAL_STORAGE_DIR>/_audit-witness``). The files are opened
with O_APPEND only; the database holds no copy, so whoever controls the database cannot edit them.

Verification (tenants/auditing/audit_chain.py) then checks the chain against every checkpoint of it:
its signature, the entry at its seq (same hash), and that the chain still reaches it. Checkpoints at
or below a retention purge are covered by the purge's own signed checkpoint (``_witnessed`` there).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from tenants.auditing import audit
from tenants.crypto import signing
from tenants.models import AuditChainHead

logger = logging.getLogger(__name__)

REASONS = ("verify", "export", "schedule")


def witness_dir() -> Path:
    configured = getattr(settings, "PORTAL_AUDIT_WITNESS_DIR", "")
    return Path(configured) if configured else Path(settings.PORTAL_STORAGE_DIR) / "_audit-witness"


def witness_path(tenant_id: int | None) -> Path:
    # By id, not slug: a deleted tenant's slug may be taken again, its chain stays.
    return witness_dir() / f"chain-{'platform' if tenant_id is None else int(tenant_id)}.jsonl"


@dataclass(frozen=True)
class Checkpoint:
    line: int
    body: dict

    @property
    def seq(self) -> int:
        value = self.body.get("seq")
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    @property
    def hash(self) -> str:
        return str(self.body.get("hash") or "")

    @property
    def at(self) -> str:
        return str(self.body.get("at") or "?")


def checkpoint_record(*, tenant_id: int | None, tenant_slug: str, seq: int, entry_hash: str,
                      reason: str) -> dict | None:
    """Append a signed checkpoint of (seq, hash) to the chain's witness file. Nothing for seq 0."""
    if seq <= 0:
        return None
    body = {"tenant_id": tenant_id, "tenant": tenant_slug, "seq": int(seq), "hash": entry_hash,
            "at": audit.format_ts(timezone.now()), "reason": reason, "key_id": signing.key_id()}
    body["signature"] = signing.sign(body)
    path = witness_path(tenant_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = audit.canonical(body) + b"\n"
    # O_APPEND: one write of a short line lands whole at the end, even with concurrent writers.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
    return body


def checkpoint_list(tenant_id: int | None) -> list[Checkpoint]:
    """Every checkpoint of a chain, in the order they were written (unreadable lines included)."""
    path = witness_path(tenant_id)
    if not path.exists():
        return []
    found = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip() or not text.endswith("\n"):
                continue  # blank, or a last line still being written (each write ends with \n)
            try:
                body = json.loads(text)
            except ValueError:
                body = {}
            found.append(Checkpoint(line=number, body=body if isinstance(body, dict) else {}))
    return found


def checkpoint_problem(checkpoint: Checkpoint, tenant_id: int | None) -> str:
    """Why a checkpoint cannot be trusted, or "" when its signature and chain are right."""
    body = checkpoint.body
    if not body or not signing.verify(body):
        return (f"the signed checkpoint on line {checkpoint.line} of {witness_path(tenant_id).name} "
                "has an invalid signature")
    if body.get("tenant_id") != tenant_id:
        return f"the signed checkpoint of {checkpoint.at} belongs to another chain"
    return ""


def heads_witness() -> int:
    """The periodic task: a checkpoint of every chain head that moved since its last checkpoint."""
    written = 0
    for head in AuditChainHead.objects.order_by("tenant_id").values("tenant_id", "last_seq", "last_hash"):
        last = _last_checkpoint(head["tenant_id"])
        if head["last_seq"] == 0 or (last and (last.get("seq"), last.get("hash")) ==
                                     (head["last_seq"], head["last_hash"])):
            continue
        checkpoint_record(tenant_id=head["tenant_id"], tenant_slug=audit.tenant_slug_of(head["tenant_id"]),
                          seq=head["last_seq"], entry_hash=head["last_hash"], reason="schedule")
        written += 1
    return written


def _last_checkpoint(tenant_id: int | None) -> dict | None:
    """The last line of the witness file, read from its end (the files only grow)."""
    path = witness_path(tenant_id)
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 8192))
            tail = handle.read().splitlines()
    except FileNotFoundError:
        return None
    try:
        return json.loads(tail[-1]) if tail else None
    except ValueError:
        return None
