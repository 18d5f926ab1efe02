"""The job machinery shared by every kind of job (training, batch prediction, …).

- State lives in PostgreSQL: the Job row in the tenant's schema (what the user sees) and a ticket
  in the public ledger (what the scheduler sees). Celery messages only wake workers up.
- ``submission``: what services call — submit a job, cancel it, wake a worker for its queue.
- ``handlers``: what a job kind is written against — a function registered with
  @job_handler("kind") gets a JobContext, reports progress, and commits its results together with
  the job's success through ctx.succeed().
- ``runner``: the worker side (mlcore.tasks calls it). A woken worker claims tickets fairly
  (tenants.limits.scheduler.claim_next) and runs each job in its own forked child process: a hard memory
  cap, a wall-time limit, a hard cancel (the process group is killed), CPU-seconds and peak memory
  read from the child itself. The parent sends heartbeats; a reaper re-queues or fails jobs whose
  worker vanished, so a job is never left "running" forever. A finished job is never run again.
"""

from .handlers import JobCancelled, JobContext, JobFailed, job_handler
from .submission import all_queues, job_cancel, job_submit, queue_for

__all__ = ["JobCancelled", "JobContext", "JobFailed", "all_queues", "job_cancel", "job_handler",
           "job_submit", "queue_for"]
