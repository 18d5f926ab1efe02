"""`portal`: the command line on the Python client.

Global options (before or after the command): --url (or PORTAL_URL), --token (or PORTAL_TOKEN),
--json (machine-readable output on stdout), --quiet (no progress bars). Errors are one line on
stderr (with --json, the problem details also go to stdout as one JSON object), and the exit status
says what happened: see EXIT_CODES.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from . import errors
from .client import Client
from .types import Job, Model

__all__ = ["EXIT_CODES", "build_parser", "main"]

OK, API_ERROR, USAGE, JOB_FAILED, QUOTA, NOT_FOUND, FORBIDDEN, INVALID, TIMED_OUT, UNAVAILABLE = range(10)
EXIT_CODES = {
    OK: "success",
    API_ERROR: "any other error answer of the API (for example 409 conflict)",
    USAGE: "usage error: bad arguments, no URL or token, a file that cannot be read",
    JOB_FAILED: "the job ended failed or cancelled",
    QUOTA: "a quota or limit refused it (quota exceeded, over a size limit, rate limited)",
    NOT_FOUND: "not found (or not visible to you)",
    FORBIDDEN: "not authenticated (401) or not allowed (403)",
    INVALID: "invalid input (400) or data that cannot satisfy the request (422)",
    TIMED_OUT: "--timeout elapsed before the job finished",
    UNAVAILABLE: "the server could not be reached or stayed unavailable (503) after retries",
}
_BY_ERROR: list[tuple[type[errors.PortalError], int]] = [
    (errors.JobFailed, JOB_FAILED), (errors.WaitTimedOut, TIMED_OUT),
    (errors.QuotaExceeded, QUOTA), (errors.TooLarge, QUOTA), (errors.RateLimited, QUOTA),
    (errors.NotFound, NOT_FOUND), (errors.AuthenticationFailed, FORBIDDEN),
    (errors.PermissionDenied, FORBIDDEN), (errors.ValidationFailed, INVALID),
    (errors.ServiceUnavailable, UNAVAILABLE),
]


class UsageError(Exception):
    """A mistake in the command line itself (exit 2)."""


# -- output ---------------------------------------------------------------------------------------

def _emit(args: argparse.Namespace, data: Any, table: Callable[[], Iterable[str]]) -> None:
    if args.json:
        print(json.dumps(data, default=str))
    else:
        for line in table():
            print(line)


def _columns(rows: list[dict[str, Any]], keys: Sequence[str]) -> list[str]:
    """A plain text table."""
    cells = [[str(k).upper() for k in keys]] + [["" if r.get(k) is None else str(r.get(k)) for k in keys]
                                               for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(keys))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]


def _pairs(body: dict[str, Any], skip: Iterable[str] = ()) -> list[str]:
    lines = []
    for key, value in body.items():
        if key in skip:
            continue
        shown = json.dumps(value, default=str) if isinstance(value, (dict, list)) else value
        lines.append(f"{key}: {'' if shown is None else shown}".rstrip())
    return lines


def _job_lines(job: Job) -> list[str]:
    return _pairs(job.raw)


# -- commands -------------------------------------------------------------------------------------

def cmd_datasets_list(client: Client, args: argparse.Namespace) -> int:
    items = [d.raw for d in client.datasets.list()]
    _emit(args, items, lambda: _columns(items, ["id", "name", "rows", "column_count", "size_bytes", "owner"]))
    return OK


def cmd_datasets_upload(client: Client, args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise UsageError(f"{args.file}: no such file")
    dataset = client.datasets.upload(path, name=args.name, description=args.description,
                                     encoding=args.encoding, progress=not args.quiet)
    _emit(args, dataset.raw, lambda: [f"Uploaded dataset {dataset.id} ({dataset.name}): "
                                      f"{dataset.rows} rows, {dataset.column_count} columns"])
    return OK


def cmd_datasets_show(client: Client, args: argparse.Namespace) -> int:
    dataset = client.datasets.get(args.id)

    def table() -> list[str]:
        cols = [{k: c.get(k) for k in ("name", "type", "missing", "distinct")} for c in dataset.columns or []]
        return _pairs(dataset.raw, skip=("columns",)) + ["", *_columns(cols, ["name", "type", "missing", "distinct"])]

    _emit(args, dataset.raw, table)
    return OK


def cmd_datasets_delete(client: Client, args: argparse.Namespace) -> int:
    client.datasets.delete(args.id)
    _emit(args, {"deleted": args.id}, lambda: [f"Deleted dataset {args.id}"])
    return OK


def _param(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"'{text}' is not KEY=VALUE")
    try:
        return key, json.loads(value)  # numbers, true/false, null, lists
    except ValueError:
        return key, value


def cmd_train(client: Client, args: argparse.Namespace) -> int:
    job = client.training_jobs.start(
        dataset=args.dataset, target=args.target, algorithm=args.algorithm, model_name=args.model_name,
        features=args.feature or None, task=args.task, params=dict(args.param or []))
    if args.wait:
        job = client.jobs.wait(job, timeout=args.timeout, progress=not args.quiet)
    _emit(args, job.raw, lambda: _job_lines(job))
    return OK


def cmd_jobs_list(client: Client, args: argparse.Namespace) -> int:
    items = [j.raw for j in client.jobs.list(kind=args.kind)]
    _emit(args, items, lambda: _columns(items, ["id", "kind", "status", "progress", "message", "created_at"]))
    return OK


def cmd_jobs_show(client: Client, args: argparse.Namespace) -> int:
    job = client.jobs.get(args.id)
    _emit(args, job.raw, lambda: _job_lines(job))
    return OK


def cmd_jobs_wait(client: Client, args: argparse.Namespace) -> int:
    job = client.jobs.wait(args.id, timeout=args.timeout, progress=not args.quiet)
    _emit(args, job.raw, lambda: _job_lines(job))
    return OK


def cmd_jobs_cancel(client: Client, args: argparse.Namespace) -> int:
    job = client.jobs.cancel(args.id)
    _emit(args, job.raw, lambda: [f"Job {job.id}: {job.status} ({job.message})"])
    return OK


def _model_row(model: Model) -> dict[str, Any]:
    return {**model.raw, "versions": len(model.versions)}


def cmd_models_list(client: Client, args: argparse.Namespace) -> int:
    models = list(client.models.list())
    rows = [_model_row(m) for m in models]
    _emit(args, [m.raw for m in models],
          lambda: _columns(rows, ["id", "name", "task", "production_version", "versions", "owner"]))
    return OK


def cmd_models_show(client: Client, args: argparse.Namespace) -> int:
    model = client.models.get(args.id)
    if args.version is None:
        def table() -> list[str]:
            rows = [{**v, "metrics": json.dumps(v.get("metrics"))} for v in model.versions]
            return _pairs(model.raw, skip=("versions",)) + ["", *_columns(rows, ["id", "version", "algorithm", "metrics"])]

        _emit(args, model.raw, table)
        return OK
    version = client.models.version(model.version_id(args.version))
    _emit(args, version.raw, lambda: _pairs(version.raw))
    return OK


def cmd_models_promote(client: Client, args: argparse.Namespace) -> int:
    model = client.models.get(args.id)
    model = client.models.promote(model.version_id(args.version))
    _emit(args, model.raw, lambda: [f"Model {model.id} ({model.name}): production version is now "
                                    f"{model.production_version}"])
    return OK


def _cell(text: str) -> Any:
    """A CSV cell as the JSON value an online prediction expects: empty is missing, numbers are
    numbers, anything else is text."""
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def cmd_predict(client: Client, args: argparse.Namespace) -> int:
    source = Path(args.file)
    if not source.is_file():
        raise UsageError(f"{args.file}: no such file")
    if args.batch:
        job = client.prediction_jobs.run(model=args.model, data=source, out=args.out,
                                         id_column=args.id_column, timeout=args.timeout,
                                         progress=not args.quiet)
        _emit(args, {**job.raw, "out": args.out},
              lambda: [f"Scored {job.result and job.result.get('rows_scored')} rows with job {job.id}; "
                       f"wrote {args.out}"])
        return OK
    with source.open(newline="", encoding="utf-8-sig") as file:
        reader = csv.DictReader(file)
        header = list(reader.fieldnames or [])
        rows = list(reader)
    if not rows:
        raise UsageError(f"{args.file}: no rows to predict")
    answer = client.models.predict(args.model, [{k: _cell(v) for k, v in r.items()} for r in rows],
                                   version=args.version)
    classes = list((answer.probabilities or [{}])[0])
    with Path(args.out).open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow([*header, "prediction", *(f"proba_{c}" for c in classes)])
        for i, row in enumerate(rows):
            probabilities = (answer.probabilities or [{}] * len(rows))[i]
            writer.writerow([*(row[h] for h in header), answer.predictions[i],
                             *(probabilities.get(c) for c in classes)])
    summary = {"rows": len(rows), "out": args.out, "model_version": answer.model_version,
               "version": answer.version}
    _emit(args, summary, lambda: [f"Predicted {len(rows)} rows with version {answer.version}; wrote {args.out}"])
    return OK


def cmd_usage(client: Client, args: argparse.Namespace) -> int:
    usage = client.usage()

    def table() -> list[str]:
        rows = [{"resource": k, "used": usage.usage.get(k), "limit": usage.limits.get(k),
                 "your_limit": usage.member_limits.get(k)} for k in usage.usage]
        return [f"plan: {usage.plan}", f"period_start: {usage.period_start}", "",
                *_columns(rows, ["resource", "used", "limit", "your_limit"])]

    _emit(args, usage.raw, table)
    return OK


def cmd_whoami(client: Client, args: argparse.Namespace) -> int:
    me = client.me()
    _emit(args, me, lambda: [f"{me['user']['email']} ({me['role']}) in {me['tenant']['slug']}"])
    return OK


def cmd_completion(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from .completion import script

    print(script(parser, args.shell))
    return OK


# -- the parser -----------------------------------------------------------------------------------

def _globals() -> argparse.ArgumentParser:
    """Global options, accepted before and after the command (SUPPRESS: a later default never
    overwrites an earlier value)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=argparse.SUPPRESS, metavar="URL",
                        help="workspace URL, e.g. http://acme.localhost:8000 (default: $PORTAL_URL)")
    common.add_argument("--token", default=argparse.SUPPRESS, help="API token (default: $PORTAL_TOKEN)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="machine-readable JSON on stdout")
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                        help="no progress bars")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _globals()
    epilog = "exit status:\n" + "\n".join(f"  {code}  {text}" for code, text in EXIT_CODES.items())
    parser = argparse.ArgumentParser(prog="portal", parents=[common], epilog=epilog,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     description="The ML Portal from the command line.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(group: Any, name: str, handler: Callable[..., int], help: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = group.add_parser(name, parents=[common], help=help, description=help)
        sub.set_defaults(handler=handler)
        return sub

    datasets = commands.add_parser("datasets", parents=[common], help="list, upload, show, delete datasets")
    group = datasets.add_subparsers(dest="action", metavar="ACTION", required=True)
    command(group, "list", cmd_datasets_list, "datasets you may view")
    upload = command(group, "upload", cmd_datasets_upload, "upload a CSV, TSV, gzip or Parquet file")
    upload.add_argument("file", metavar="FILE")
    upload.add_argument("--name")
    upload.add_argument("--description")
    upload.add_argument("--encoding", help="character set of a text file (default UTF-8)")
    command(group, "show", cmd_datasets_show, "a dataset and its column profile").add_argument("id", type=int)
    command(group, "delete", cmd_datasets_delete, "delete a dataset").add_argument("id", type=int)

    train = command(commands, "train", cmd_train, "train a model version (a job)")
    train.add_argument("--dataset", type=int, required=True, metavar="ID")
    train.add_argument("--target", required=True, metavar="COLUMN")
    train.add_argument("--algorithm", required=True, choices=[
        "logistic_regression", "linear_regression", "ridge", "random_forest", "hist_gradient_boosting"])
    train.add_argument("--model-name", help="default: the target's name")
    train.add_argument("--feature", action="append", metavar="COLUMN", help="repeat; default: all but the target")
    train.add_argument("--task", choices=["classification", "regression"])
    train.add_argument("--param", action="append", type=_param, metavar="KEY=VALUE",
                       help="a hyperparameter (value read as JSON when it can be); repeat")
    train.add_argument("--wait", action="store_true", help="wait for the job (exit 3 if it fails)")
    train.add_argument("--timeout", type=float, metavar="SECONDS", help="with --wait: give up after")

    jobs = commands.add_parser("jobs", parents=[common], help="list, show, wait for, cancel jobs")
    group = jobs.add_subparsers(dest="action", metavar="ACTION", required=True)
    command(group, "list", cmd_jobs_list, "your jobs, newest first").add_argument(
        "--kind", choices=["training", "prediction"])
    command(group, "show", cmd_jobs_show, "a job").add_argument("id", type=int)
    wait = command(group, "wait", cmd_jobs_wait, "wait for a job (exit 3 if it fails)")
    wait.add_argument("id", type=int)
    wait.add_argument("--timeout", type=float, metavar="SECONDS")
    command(group, "cancel", cmd_jobs_cancel, "cancel a job").add_argument("id", type=int)

    models = commands.add_parser("models", parents=[common], help="list, show, promote models")
    group = models.add_subparsers(dest="action", metavar="ACTION", required=True)
    command(group, "list", cmd_models_list, "models you may view")
    show = command(group, "show", cmd_models_show, "a model and its versions, or one version's details")
    show.add_argument("id", type=int)
    show.add_argument("--version", type=int, metavar="N", help="a version number")
    promote = command(group, "promote", cmd_models_promote, "make version N the production version")
    promote.add_argument("id", type=int)
    promote.add_argument("--version", type=int, metavar="N", required=True)

    predict = command(commands, "predict", cmd_predict,
                      "score a CSV file: online (1,000 rows a call), or --batch as a job")
    predict.add_argument("--model", type=int, required=True, metavar="ID")
    predict.add_argument("--file", required=True, metavar="FILE")
    predict.add_argument("--out", required=True, metavar="FILE")
    predict.add_argument("--version", type=int, metavar="N", help="online: a version number (default production)")
    predict.add_argument("--batch", action="store_true", help="upload the file and score it as a job")
    predict.add_argument("--id-column", metavar="COLUMN", help="--batch: copied into the output")
    predict.add_argument("--timeout", type=float, metavar="SECONDS", help="--batch: give up waiting after")

    command(commands, "usage", cmd_usage, "the plan's limits and what the workspace uses")
    command(commands, "whoami", cmd_whoami, "your user, workspace and role")
    completion = commands.add_parser("completion", help="print a shell completion script")
    completion.add_argument("shell", choices=["bash", "zsh"])
    completion.set_defaults(handler=None)
    return parser


def _fail(args: argparse.Namespace, code: int, message: str, problem: dict[str, Any] | None = None) -> int:
    print(f"portal: {message}", file=sys.stderr)
    if getattr(args, "json", False) and problem is not None:
        print(json.dumps({"error": problem}, default=str))
    return code


def _exit_code(error: errors.PortalError) -> int:
    return next((code for cls, code in _BY_ERROR if isinstance(error, cls)), API_ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on a usage error, as argparse does
    for name in ("json", "quiet"):
        setattr(args, name, getattr(args, name, False))
    if args.handler is None:
        return cmd_completion(parser, args)
    try:
        client = Client(getattr(args, "url", None), getattr(args, "token", None))
    except ValueError as exc:
        return _fail(args, USAGE, f"{exc} (or use --url / --token)")
    try:
        with client:
            code: int = args.handler(client, args)
            return code
    except UsageError as exc:
        return _fail(args, USAGE, str(exc))
    except errors.JobFailed as exc:
        if args.json:
            print(json.dumps(exc.job.raw, default=str))
        print(f"portal: {exc.detail}", file=sys.stderr)
        return JOB_FAILED
    except errors.PortalError as exc:
        detail = " ".join(exc.detail.split())
        fields = getattr(exc, "errors", None) or []
        named = [e for e in fields if e.get("field")]
        if named and len(fields) > 1:
            detail += " " + "; ".join(f"{e['field']}: {e.get('message', '')}" for e in named)
        status = f" ({exc.status})" if exc.status else ""
        return _fail(args, _exit_code(exc), f"{detail}{status}", exc.problem)
    except LookupError as exc:  # a version number the model does not have
        return _fail(args, NOT_FOUND, str(exc).strip("'\""))
    except OSError as exc:
        return _fail(args, USAGE, str(exc))
    except KeyboardInterrupt:
        return _fail(args, 130, "interrupted")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
