"""Periodic audit work (CELERY_BEAT_SCHEDULE in portal/settings/base.py). Beat runs in public, and so
do these: the audit tables live in the public schema."""

from __future__ import annotations

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="tenants.audit_verify_chains")
def audit_verify_chains() -> dict:
    """Daily: verify every tenant's chain; the operator page shows the results."""
    from tenants.auditing.audit_chain import chains_verify

    results = chains_verify(trigger="schedule")
    broken = [r.describe() for r in results if not r.ok]
    logger.info("audit chains verified", extra={"chains": len(results), "broken": len(broken)})
    return {"chains": len(results), "broken": broken}


@shared_task(name="tenants.audit_witness_heads")
def audit_witness_heads() -> int:
    """Every few minutes: a signed checkpoint of each chain head that moved (outside the database)."""
    from tenants.auditing.witness import heads_witness

    return heads_witness()


@shared_task(name="tenants.audit_flush_online")
def audit_flush_online() -> int:
    """Every few seconds: online-prediction counters in Redis -> prediction.online entries."""
    from tenants.auditing.online import online_flush

    return online_flush()


@shared_task(name="tenants.audit_flush_pending")
def audit_flush_pending() -> int:
    """Every second: buffered access-log entries -> their chains, in batches (one lock each)."""
    from tenants.auditing.audit import flush_all_pending

    return flush_all_pending()


@shared_task(name="tenants.usage_sync")
def usage_sync() -> int:
    """API calls and predicted rows counted in Redis -> UsageDaily (every minute)."""
    from tenants.limits import metering, quotas

    touched = metering.sync_to_database()
    quotas.predicted_rows_thresholds_check()
    return touched


@shared_task(name="tenants.tokens_last_used_flush")
def tokens_last_used_flush() -> int:
    """Every minute: the last use of each API token, noted in Redis per request -> its row."""
    from tenants.services import api_tokens_last_used_flush

    return api_tokens_last_used_flush()


@shared_task(name="tenants.webhook_deliver", ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def webhook_deliver(schema_name: str, delivery_id: int) -> str:
    """One attempt at one webhook delivery (tenants/webhooks/delivery.py); retries come from the sweep."""
    from tenants.models import Tenant
    from tenants.webhooks.delivery import delivery_attempt

    tenant = Tenant.objects.filter(schema_name=schema_name).first()
    if tenant is None:
        return "skipped"
    return delivery_attempt(tenant=tenant, delivery_id=delivery_id)


@shared_task(name="tenants.webhooks_send_due", ignore_result=True)
def webhooks_send_due() -> int:
    """Every 5 s: queue the webhook deliveries that are due (retries, and sends lost with the broker)."""
    from tenants.webhooks.delivery import deliveries_send_due

    return deliveries_send_due()


@shared_task(name="tenants.idempotency_purge")
def idempotency_purge() -> int:
    """Hourly: Idempotency-Key answers past their retention (PORTAL_IDEMPOTENCY_HOURS)."""
    from tenants.web.idempotency import purge_expired

    return purge_expired()
