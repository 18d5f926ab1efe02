"""Fair share with real workers: does a flood from one tenant delay another tenant's jobs?

    .venv/bin/python bench/fairness.py [--flood 200] [--jobs 20] [--runs 3] [--workers 2] [--search]

Tenant A submits FLOOD jobs of about one second, then tenant B submits JOBS. B's waits (job
start minus submission) are measured with and without A's flood, interleaved, `runs` times.
Target: B's median wait under flood <= 1.5x its wait alone + one job's duration. Also printed:
worker utilisation while jobs were waiting (target: workers busy whenever jobs wait).

--search: a third tenant runs a model search (AutoML, one trial per turn) through every run, alone
and under flood, so B's waits are measured beside it; the same target applies.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from datetime import datetime

from _db import bench_database
from _platform import ROOT, Worker, isolate_queues, make_tenant, upload, wait_jobs

TRAIN = {"target": "label", "algorithm": "random_forest", "params": {"n_estimators": 25},
         "evaluation": {"method": "holdout", "test_size": 0.2}}


def dataset_csv(rows: int = 2500) -> bytes:
    import numpy as np

    rng = np.random.default_rng(1)
    lines = ["a,b,c,label"]
    for _ in range(rows):
        a, b, c = rng.normal(size=3)
        lines.append(f"{a:.4f},{b:.4f},{c:.4f},{'x' if a + b * c > 0 else 'y'}")
    return ("\n".join(lines) + "\n").encode()


def submit(client, dataset_id: int, n: int, name: str) -> list[int]:
    ids = []
    for i in range(n):
        body = {"dataset": dataset_id, "model_name": f"{name}-{i % 5}", **TRAIN}
        response = client.post("/api/v1/training-jobs/", body, format="json")
        if response.status_code != 202:
            raise RuntimeError(f"submit failed: {response.status_code} {response.content[:200]!r}")
        ids.append(response.json()["id"])
    return ids


def waits(jobs: list[dict]) -> list[float]:
    def ts(value):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))

    return [(ts(j["started_at"]) - ts(j["created_at"])).total_seconds() for j in jobs if j["started_at"]]


def p90(values: list[float]) -> float:
    return sorted(values)[max(int(len(values) * 0.9) - 1, 0)]


class Utilisation:
    """Samples the ledger: how often were fewer jobs running than workers while jobs waited?"""

    def __init__(self, workers: int, tenants):
        self.workers, self.tenants = workers, tenants
        self.samples, self.idle = 0, 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        from django.db import connection

        from tenants.models import JobTicket

        while not self._stop.wait(0.25):
            rows = JobTicket.objects.filter(tenant__in=self.tenants)
            queued = rows.filter(state=JobTicket.State.QUEUED).exists()
            running = rows.filter(state=JobTicket.State.RUNNING).count()
            if queued:
                self.samples += 1
                self.idle += running < self.workers
        connection.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self.thread.join()

    @property
    def busy_share(self) -> float:
        return 1 - self.idle / self.samples if self.samples else 1.0


def cancel_queued(client, job_ids: list[int]) -> None:
    for job_id in job_ids:
        client.post(f"/api/v1/jobs/{job_id}/cancel/")


class Searching:
    """Tenant C's model search, started again whenever it ends, so one is always in the queue."""

    def __init__(self, client, dataset_id: int):
        self.client, self.dataset_id = client, dataset_id
        self.ids: list[int] = []

    def keep_running(self) -> None:
        if self.ids and self.client.get(f"/api/v1/searches/{self.ids[-1]}/").json()["status"] in (
                "queued", "running"):
            return
        response = self.client.post("/api/v1/searches/", {
            "dataset": self.dataset_id, "target": "label", "budget_seconds": 3600,
            "budget_cpu_seconds": 100_000}, format="json")
        if response.status_code != 202:
            raise RuntimeError(f"search refused: {response.status_code} {response.content[:200]!r}")
        self.ids.append(response.json()["id"])

    def report(self) -> str:
        trials = sum(len(self.client.get(f"/api/v1/searches/{i}/").json()["trials"]) for i in self.ids)
        return f"tenant C's searches: {len(self.ids)} started, {trials} trials run beside the measurements"

    def stop(self) -> None:
        for search_id in self.ids:
            self.client.post(f"/api/v1/searches/{search_id}/cancel/")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--flood", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--search", action="store_true", help="a third tenant's model search runs throughout")
    args = parser.parse_args()
    isolate_queues()
    with bench_database("fair"):
        from mlcore.jobs import queue_for
        from tenants.limits.quotas import tenant_limits_set

        tenant_a, [(_, alice)] = make_tenant("flood-a")
        tenant_b, [(_, bob)] = make_tenant("single-b")
        tenant_c, [(_, carol)] = make_tenant("search-c")
        for tenant in (tenant_a, tenant_b, tenant_c):
            tenant_limits_set(tenant=tenant, overrides={"concurrent_jobs": args.workers,
                                                        "cpu_seconds": 10**9})
        data_a = upload(alice, dataset_csv())["id"]
        data_b = upload(bob, dataset_csv())["id"]
        searching = Searching(carol, upload(carol, dataset_csv())["id"]) if args.search else None
        worker = Worker([queue_for("training")], args.workers, ROOT / "var" / "bench-fairness-worker.log")
        try:
            probe = wait_jobs(bob, submit(bob, data_b, 3, "probe"))
            job_seconds = statistics.median(
                (datetime.fromisoformat(j["finished_at"].replace("Z", "+00:00"))
                 - datetime.fromisoformat(j["started_at"].replace("Z", "+00:00"))).total_seconds() for j in probe)
            print(f"one job takes about {job_seconds:.2f} s; {args.workers} worker processes\n")
            alone_medians, flood_medians, alone_p90s, flood_p90s, busy = [], [], [], [], []
            for run in range(1, args.runs + 1):
                if searching:
                    searching.keep_running()
                alone = waits(wait_jobs(bob, submit(bob, data_b, args.jobs, "alone")))
                with Utilisation(args.workers, [tenant_a, tenant_b]) as util:
                    flood_ids = submit(alice, data_a, args.flood, "flood")
                    time.sleep(2 * job_seconds)  # the flood is running
                    flooded = waits(wait_jobs(bob, submit(bob, data_b, args.jobs, "during")))
                busy.append(util.busy_share)
                cancel_queued(alice, flood_ids)
                wait_jobs(alice, flood_ids)
                alone_medians.append(statistics.median(alone))
                flood_medians.append(statistics.median(flooded))
                alone_p90s.append(p90(alone))
                flood_p90s.append(p90(flooded))
                print(f"run {run}: B alone median {alone_medians[-1]:.2f} s p90 {alone_p90s[-1]:.2f} s | "
                      f"under flood median {flood_medians[-1]:.2f} s p90 {flood_p90s[-1]:.2f} s | "
                      f"workers busy while jobs waited: {100 * busy[-1]:.0f}%")
            if searching:
                print(searching.report())
        finally:
            if searching:
                searching.stop()
            worker.stop()

    alone_m, flood_m = statistics.median(alone_medians), statistics.median(flood_medians)
    budget = 1.5 * alone_m + job_seconds
    print()
    print(f"{'measure (median of ' + str(args.runs) + ' runs)':<44}{'alone':>10}{'flood':>10}")
    print(f"{'B wait median, s':<44}{alone_m:>10.2f}{flood_m:>10.2f}")
    print(f"{'B wait p90, s':<44}{statistics.median(alone_p90s):>10.2f}{statistics.median(flood_p90s):>10.2f}")
    print(f"ratio flood/alone (median): {flood_m / alone_m if alone_m else float('inf'):.2f}")
    print(f"target: flood median <= 1.5 x alone + one job = {budget:.2f} s -> "
          f"{'met' if flood_m <= budget else 'NOT met'}")
    print(f"workers busy while jobs waited: {100 * statistics.median(busy):.0f}% (median of runs)")


if __name__ == "__main__":
    main()
