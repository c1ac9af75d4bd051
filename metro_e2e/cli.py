"""The ``metro-e2e`` command: the decisions about what the user sees live here."""

from __future__ import annotations

import argparse
import json
import os
import sys

from metro_e2e import __version__
from metro_e2e._console import guarded
from metro_e2e.config import describe, load_config


def _demo(args: argparse.Namespace) -> int:
    from metro_e2e import demo

    result = demo.run()
    print(
        f"metro-e2e demo: in-process Iris workflow (S3: moto, in-process; MLflow client {result.mlflow_client}, "
        "sqlite store in a temp folder)"
    )
    print(
        f"data       uploaded {result.rows} rows to s3://ml-data/iris/iris.csv; "
        f"split {result.train_rows} train / {result.test_rows} test"
    )
    print(f"training   accuracy {result.train.accuracy:.4f} (run {result.train.run_id})")
    print(f"registry   {result.train.model_name} version {result.train.version}")
    print(
        f"latest/    {len(result.latest_files)} objects in s3://ml-models/latest/, marker says version "
        f"{result.marker_version}:"
    )
    for key in result.latest_files:
        print(f"             {key}")
    print(f"serving    predictions for 2 rows: {result.predictions} (labels {result.expected})")
    return 0 if result.predictions == result.expected else 1


def _config(args: argparse.Namespace) -> int:
    config = load_config(cli={"url": args.url}, environ=os.environ)
    for name, value in describe(config).items():
        print(f"{name:16} {value}")
    return 0


def _k8s_render(args: argparse.Namespace) -> int:
    from metro_e2e import k8s

    print(
        k8s.to_yaml(
            k8s.render(namespace=args.namespace, image=args.image, allow_promote=args.allow_promote, form=args.form)
        ),
        end="",
    )
    return 0


def _k8s_restart(args: argparse.Namespace) -> int:
    from metro_e2e import k8s

    print(k8s.restart_deployment(args.namespace, args.deployment, timeout_s=args.timeout, progress=print), flush=True)
    return 0


def _pipeline_compile(args: argparse.Namespace) -> int:
    from metro_e2e.pipeline import compile_pipeline

    out = compile_pipeline(args.output, image=args.image, kfp_backend=args.backend)
    print(f"compiled the Iris pipeline (step image {args.image}, for KFP backend {args.backend}) to {out}")
    return 0


def _pipeline_check(args: argparse.Namespace) -> int:
    from metro_e2e.pipeline import backend, spec

    pipeline = spec.load(_existing(args.file))
    problems = spec.check(pipeline)
    checked = "the step CLIs"
    if args.backend != backend.SDK:
        problems += backend.check(open(args.file).read(), args.backend)
        checked += f" and what KFP {args.backend} reads"
    if args.image or args.image_record:
        from metro_e2e.pipeline import image

        record = image.read_file(args.image_record) if args.image_record else image.read_from_image(args.image)
        problems += image.problems(record)
        checked += " and metro-e2e's tested versions (the step image's record)"
        if args.image:
            used = sorted(
                {str(e.get("container", {}).get("image")) for e in pipeline.executors.values()} - {args.image}
            )
            problems += [f"the pipeline's steps run {other}, not {args.image}" for other in used]
    for problem in problems:
        print(f"  {problem}")
    print(f"{args.file}: {f'conforms to {checked}' if not problems else f'{len(problems)} problem(s)'}")
    return 0 if not problems else 10


def _pipeline_image(args: argparse.Namespace) -> int:
    from metro_e2e.pipeline import image

    image.build(args.registry, tag=args.tag, push=args.push, dry_run=args.dry_run, context=args.context)
    return 0


def _pipeline_run_local(args: argparse.Namespace) -> int:
    from metro_e2e.errors import PipelineError
    from metro_e2e.pipeline.local import run_local

    try:
        result = run_local(
            _existing(args.file), params=args.param, run_dir=args.run_dir, task_timeout=args.task_timeout
        )
    except PipelineError as exc:
        if exc.result is not None:
            print(exc.result.summary())
        raise
    print(result.summary())
    print(f"run {result.run_id} succeeded; logs and artifacts in {result.run_dir}")
    return 0


STACK_POINTER = ".metro-e2e/stack/current.json"


def _stack_up(args: argparse.Namespace) -> int:
    from pathlib import Path

    from metro_e2e.stack import LocalStack, StackOptions

    pointer = Path(args.state)
    if pointer.exists():
        from metro_e2e.stack.process import StackError

        raise StackError(f"a stack is already recorded in {pointer}", hint="run `metro-e2e stack down` first")
    stack = LocalStack(
        StackOptions(
            mlflow_server=args.mlflow_server,
            s3=args.s3,
            seed_model=args.seed,
            run_dir=Path(args.run_dir) if args.run_dir else None,
        )
    )
    print(
        f"starting the local Metro stack (MLflow server {stack.profile.version}, S3 {stack.s3_choice.backend}: "
        f"{stack.s3_choice.reason}) ...",
        flush=True,
    )
    stack.start()
    pointer.parent.mkdir(parents=True, exist_ok=True)
    pointer.write_text(str(stack.run_dir / "stack.json"))
    _print_status(stack.status())
    print("stop it with: metro-e2e stack down")
    return 0


def _print_status(status: dict) -> None:
    print(f"gateway    {status['gateway_url']}")
    print(f"s3         {status['s3_backend']}")
    for name, svc in status["services"].items():
        state = f"  [{svc['state']}]" if svc.get("state") else ""
        print(f"  {name:9} {svc['url']:28} {svc.get('version') or '-':14} log {svc['log']}{state}")
    print(f"kfp        {status['kfp']}")


def _stack_state(args: argparse.Namespace):
    from pathlib import Path

    from metro_e2e.stack.process import StackError

    pointer = Path(args.state)
    if not pointer.exists():
        raise StackError(f"no running stack is recorded in {pointer}", hint="start one with `metro-e2e stack up`")
    return pointer, Path(pointer.read_text().strip())


def _stack_down(args: argparse.Namespace) -> int:
    from metro_e2e.stack.stack import stop_from_state

    pointer, state = _stack_state(args)
    stopped = stop_from_state(state) if state.exists() else []
    pointer.unlink()
    print(f"stopped {', '.join(stopped) or 'nothing (the state file was gone)'}")
    return 0


def _stack_restart_serving(args: argparse.Namespace) -> int:
    from metro_e2e.stack.stack import restart_serving_from_state

    _, state = _stack_state(args)
    print(f"serving: {restart_serving_from_state(state)}")
    return 0


def _stack_compose_gateway(args: argparse.Namespace) -> int:
    from pathlib import Path

    from metro_e2e.stack.gateway import compose_config

    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(compose_config())
    print(f"wrote the docker-compose gateway config to {args.output}")
    return 0


def _stack_status(args: argparse.Namespace) -> int:
    import json
    import os

    _, state = _stack_state(args)
    status = json.loads(state.read_text())
    for svc in status["services"].values():
        pid = svc.get("pid")
        alive = bool(pid) and os.path.exists(f"/proc/{pid}")
        svc["state"] = (svc.get("state") or "running") if alive else (svc.get("state") or "not running")
    _print_status(status)
    return 0


def _clauses(args: argparse.Namespace) -> int:
    from metro_e2e.conformance import catalogue

    if args.format in ("yaml", "json"):
        import yaml

        data = catalogue.catalogue()
        text = json.dumps(data, indent=2) + "\n" if args.format == "json" else yaml.safe_dump(data, sort_keys=False)
        print(text, end="")
        return 0
    table = args.format == "table"
    print(catalogue.markdown_table() if table else catalogue.clause_docs(), end="\n" if table else "")
    return 0


def _check(args: argparse.Namespace) -> int:
    from metro_e2e._console import sigterm_as_interrupt
    from metro_e2e.conformance import runner
    from metro_e2e.conformance.catalogue import GATEWAY
    from metro_e2e.conformance.options import REPORT_LINE_MARK, Options, from_arguments, in_results_dir
    from metro_e2e.errors import MetroE2EError

    target = args.url or os.environ.get("METRO_URL")  # an empty METRO_URL is unset
    request = Options(  # the mode and where the reports go, for the reports of a check that cannot start
        **in_results_dir(
            {
                "quick": args.quick,
                "allow_promote": args.allow_promote,
                "report_json": (args.report_json or "").strip() or None,
                "junit_xml": (args.junit_xml or "").strip() or None,
                "results_dir": (args.results_dir or "").strip() or None,
                "html": (args.html or "").strip() or None,
                "bundle": (args.bundle or "").strip() or None,
            }
        )
    )
    mask = str  # until the settings are read: then every file written masks their secrets
    try:  # malformed settings and conflicting options: one sentence before anything runs, and the reports anyway
        request = from_arguments(args)
        config = load_config(cli={"url": args.url}, environ=os.environ)
        mask = config.mask
        runner.validate(request)
        if not target:
            _local_stack_possible()
    except MetroE2EError as exc:
        runner.write_not_run(request, _masked(target) if target else "the local Metro stack", exc, mask=mask)
        raise
    print(f"metro-e2e check: {config.mask(config.url) if target else 'the local Metro stack'}", flush=True)
    try:
        with sigterm_as_interrupt():
            outcome = runner.run(request, mask=config.mask)
    except MetroE2EError as exc:  # the session ended before the plugin could write a report: write one anyway
        where = config.mask(config.url) if target else "the local Metro stack"
        runner.write_not_run(request, where, exc, mask=config.mask)
        raise
    report = outcome.report
    print()
    print(runner.table(report))
    for line in runner.baseline_lines(report):
        print(line)
    for path, what in ((request.report_json, "report"), (request.html, "html"), (request.bundle, "bundle")):
        if path:
            print(f"{what}: {path}")
    if request.log_json:
        print(REPORT_LINE_MARK + json.dumps(report, separators=(",", ":")), flush=True)
    verdicts = {c["id"]: c for c in report["clauses"]}
    if outcome.stopped:
        not_run = sum(1 for c in report["clauses"] if c["detail"].startswith(("not run:", "not finished:")))
        print(
            f"metro-e2e: error: the run {outcome.stopped}: {not_run} clause(s) have no verdict (reports written)",
            file=sys.stderr,
        )
    elif verdicts[GATEWAY]["verdict"] == "failed":  # nothing else could run: say why in one sentence
        print(
            f"metro-e2e: error: {GATEWAY} failed, so no other clause ran: {verdicts[GATEWAY]['detail']}",
            file=sys.stderr,
        )
    elif (sentence := runner.diagnosis(report)) is not None:
        print(f"metro-e2e: error: {sentence}", file=sys.stderr)
    return outcome.exit_code


def _report(args: argparse.Namespace) -> int:
    from metro_e2e.conformance import bundle, html, runner

    loaded = bundle.load(args.run)
    report = loaded.report
    if args.format == "json":
        print(json.dumps(report, indent=2))
    else:
        if loaded.is_bundle:
            print(
                f"{args.run}: bundle of run {report['run_id']}, {len(loaded.manifest['files'])} files, sha256 verified"
            )
        print(runner.table(report))
        for line in runner.baseline_lines(report):
            print(line)
    if args.html:
        note = (
            ""
            if loaded.is_bundle
            else "This page was made from a JSON report, which carries no evidence (a bundle does)."
        )
        page = html.page(report, loaded.evidence(), evidence_note=note)
        print(f"html: {html.write(page, args.html)}", file=sys.stderr if args.format == "json" else sys.stdout)
    return 0


def _diff(args: argparse.Namespace) -> int:
    from metro_e2e.conformance import bundle, compare
    from metro_e2e.conformance.options import Options

    names = ("slower_ratio", "slower_floor_s")  # declared once, as check's options (Options validates them)
    limits = Options(**{n: getattr(args, n) for n in names if getattr(args, n) is not None})
    old, new = bundle.load(args.old), bundle.load(args.new)
    found = compare.diff(old.report, new.report, ratio=limits.slower_ratio, floor_s=limits.slower_floor_s)
    print(json.dumps(found.as_dict(), indent=2) if args.format == "json" else "\n".join(found.lines()))
    return 1 if found.regressions else 0


def _local_stack_possible() -> None:
    """Without a URL the check runs against the local stack, whose gateway is nginx: say so before anything runs."""
    from metro_e2e.errors import ConfigError, StackError
    from metro_e2e.stack import gateway

    try:
        gateway.nginx_binary()
    except StackError:
        raise ConfigError(
            "no gateway URL given, and the local Metro stack the check would then start needs nginx, which is not "
            "installed",
            setting="url",
            source="no --url and no METRO_URL",
            hint=f"pass --url URL (or set METRO_URL) to check a platform, or {gateway.NGINX_INSTALL_HINT}",
        ) from None


def _masked(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return url.replace(parts.password, "***") if parts.password else url


def _existing(path: str) -> str:
    from pathlib import Path

    from metro_e2e.errors import InputError

    if not Path(path).is_file():
        raise InputError(
            f"pipeline file {path!r} does not exist", hint="compile one with: metro-e2e pipeline compile -o FILE"
        )
    return path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="metro-e2e", description="End-to-end conformance suite for the Metro MLOps platform."
    )
    parser.add_argument("--version", action="version", version=f"metro-e2e {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    check = sub.add_parser("check", help="prove every clause of the Metro contract against a platform")
    from metro_e2e.conformance.options import add_arguments

    add_arguments(check)
    check.set_defaults(func=_check)
    clauses = sub.add_parser("clauses", help="print the contract's clauses (markdown)")
    clauses.add_argument(
        "--format",
        choices=["table", "docs", "yaml", "json"],
        default="table",
        help="table: the clause table of docs/conformance.md; docs: docs/clauses.md (budgets and the breakages proven "
        "to fail each clause); yaml, json: the catalogue as data (docs/clauses.yaml is its committed copy)",
    )
    clauses.set_defaults(func=_clauses)
    rep = sub.add_parser("report", help="print the verdict table of a run from its bundle or JSON report (no platform)")
    rep.add_argument("run", metavar="RUN", help="a bundle (check --bundle) or a JSON report (check --report-json)")
    add_arguments(rep, only=("html",))  # the page, with the evidence when RUN is a bundle
    rep.add_argument("--format", choices=["table", "json"], default="table", help="table (default) or the JSON report")
    rep.set_defaults(func=_report)
    dif = sub.add_parser(
        "diff", help="what got worse, better, changed or markedly slower between two runs; exit 1 on a regression"
    )
    dif.add_argument("old", metavar="OLD", help="the earlier run: a bundle or a JSON report")
    dif.add_argument("new", metavar="NEW", help="the later run: a bundle or a JSON report")
    add_arguments(dif, only=("slower_ratio", "slower_floor_s"))
    dif.add_argument("--format", choices=["text", "json"], default="text", help="text (default) or JSON")
    dif.set_defaults(func=_diff)
    demo = sub.add_parser("demo", help="run the whole Iris workflow in-process (moto S3, sqlite MLflow)")
    demo.set_defaults(func=_demo)
    cfg = sub.add_parser("config", help="print every setting, its value and where it came from (secrets masked)")
    cfg.add_argument("--url", default=None, help="gateway URL (env METRO_URL)")
    cfg.set_defaults(func=_config)

    from metro_e2e.pipeline import DEFAULT_IMAGE  # the kfp SDK is imported only by the pipeline commands
    from metro_e2e.pipeline.backend import CHOICES, DEFAULT_BACKEND, SDK

    backend_help = (
        f"KFP backend version to target (default {DEFAULT_BACKEND}, the platform's); "
        f"'{SDK}': as the kfp SDK writes it, for a backend that reads that"
    )

    pipe = sub.add_parser("pipeline", help="compile, check or locally run the Iris KFP pipeline")
    psub = pipe.add_subparsers(dest="pipeline_command", required=True, metavar="ACTION")
    comp = psub.add_parser("compile", help="compile the pipeline to YAML (deterministic)")
    comp.add_argument("-o", "--output", required=True, help="YAML file to write")
    comp.add_argument(
        "--image", default=DEFAULT_IMAGE, help=f"step image every component runs (default {DEFAULT_IMAGE})"
    )
    comp.add_argument("--backend", choices=CHOICES, default=DEFAULT_BACKEND, help=backend_help)
    comp.set_defaults(func=_pipeline_compile)
    chk = psub.add_parser(
        "check", help="check a compiled YAML against the step CLIs it calls and what a KFP backend reads"
    )
    chk.add_argument("file")
    chk.add_argument("--backend", choices=CHOICES, default=DEFAULT_BACKEND, help=backend_help)
    where = chk.add_mutually_exclusive_group()
    where.add_argument("--image", help="also check the step image's recorded versions (reads it with docker run)")
    where.add_argument("--image-record", metavar="FILE", help="also check a saved record of the step image")
    img = psub.add_parser("image", help="build (and push) the step image from this clone's Dockerfile")
    img.add_argument("--registry", default="", help="registry/namespace to tag it for (e.g. ghcr.io/acme)")
    img.add_argument("--tag", default=DEFAULT_IMAGE.rsplit(":", 1)[1], help="image tag (default the suite's version)")
    img.add_argument("--push", action="store_true", help="push it after the build")
    img.add_argument("--dry-run", action="store_true", help="print the docker commands only")
    img.add_argument("--context", default=None, help="the clone's folder (default: the one this metro-e2e runs from)")
    img.set_defaults(func=_pipeline_image)
    chk.set_defaults(func=_pipeline_check)
    run = psub.add_parser("run-local", help="run a compiled YAML here: no Kubernetes, no Docker")
    run.add_argument("file")
    run.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="pipeline parameter")
    run.add_argument("--run-dir", default=".metro-e2e/runs", help="where task logs and artifacts go")
    run.add_argument("--task-timeout", type=float, default=600.0, help="seconds before a task is killed")
    run.set_defaults(func=_pipeline_run_local)

    from metro_e2e import k8s as kube  # no Kubernetes client import until a k8s command runs

    k8s = sub.add_parser("k8s", help="the suite as an in-cluster Job: render its manifests; restart serving")
    ksub = k8s.add_subparsers(dest="k8s_command", required=True, metavar="ACTION")
    render = ksub.add_parser("render", help="print the ServiceAccount, least-privilege RBAC and Job that run check")
    render.add_argument(
        "--namespace", default=kube.DEFAULT_NAMESPACE, help="where the Job runs; the secret must be there"
    )
    render.add_argument("--image", default=DEFAULT_IMAGE, help=f"image with metro-e2e (default {DEFAULT_IMAGE})")
    render.add_argument(
        "--allow-promote", action="store_true", help="run the promote clauses (adds the Role SRV-5 needs)"
    )
    render.add_argument(
        "--as",
        dest="form",
        choices=kube.FORMS,
        default=kube.FORMS[0],
        help="job (default), helm-test hooks, or a Sonobuoy plugin",
    )
    render.set_defaults(func=_k8s_render)
    restart = ksub.add_parser("restart", help="rollout restart of a Deployment and wait for it (get and patch only)")
    restart.add_argument("--namespace", default=kube.SERVING_NAMESPACE)
    restart.add_argument("--deployment", default=kube.SERVING_DEPLOYMENT)
    restart.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the rollout")
    restart.set_defaults(func=_k8s_restart)

    from metro_e2e.stack.mlflow_server import DEFAULT_PROFILE, PROFILES

    stack = sub.add_parser("stack", help="start, stop or inspect the local Metro stack")
    ssub = stack.add_subparsers(dest="stack_command", required=True, metavar="ACTION")
    up = ssub.add_parser("up", help="start the stack in the background and print its URLs")
    up.add_argument(
        "--mlflow-server",
        choices=sorted(PROFILES),
        default=DEFAULT_PROFILE,
        help=f"MLflow server profile (default {DEFAULT_PROFILE}, the platform's)",
    )
    up.add_argument("--s3", choices=["auto", "moto"], default="auto", help="auto: MinIO if available, else moto")
    up.add_argument("--run-dir", default=None, help="folder for logs and data (default: a new temp folder)")
    up.add_argument("--seed", action="store_true", help="train, promote and serve iris-model, as after the guide")
    up.set_defaults(func=_stack_up)
    down = ssub.add_parser("down", help="stop the stack started by `stack up`")
    down.set_defaults(func=_stack_down)
    st = ssub.add_parser("status", help="print the recorded stack's URLs, versions, logs and states")
    st.set_defaults(func=_stack_status)
    rs = ssub.add_parser("restart-serving", help="reload latest/ into the model server (kubectl rollout restart)")
    rs.set_defaults(func=_stack_restart_serving)
    cg = ssub.add_parser("compose-gateway", help="render docker-compose's gateway config from the same template")
    cg.add_argument("-o", "--output", default="docker/gateway.conf")
    cg.set_defaults(func=_stack_compose_gateway)
    for p in (up, down, st, rs):
        p.add_argument(
            "--state", default=STACK_POINTER, help=f"where `stack up` records the stack (default {STACK_POINTER})"
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return guarded("metro-e2e", lambda: args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
