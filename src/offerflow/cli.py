"""`offerflow <stage>`, `offerflow run`, `offerflow flow`: the command line that dvc.yaml calls and people type.

Subcommands come from the pipeline declaration (offerflow.pipeline). Exit codes (offerflow.errors):
0 ok, 1 other error, 2 bad params.yaml, 3 input data failed validation (or is missing or stale),
4 infeasible plan, 5 the publish gate refused every policy.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from offerflow.errors import EXIT_OK, ConfigError, OfferflowError, exit_code_of

log = logging.getLogger("offerflow")


def project_environment(params_file: Path) -> None:
    """Prefect state and start-up timeout for entry points outside make (the user's environment wins).

    Prefect's ephemeral server misses its default start-up timeout on a busy 2-core machine, and its
    state belongs to the project, not to ~/.prefect.
    """
    root = Path(params_file).resolve().parent
    os.environ.setdefault("PREFECT_HOME", str(root / ".prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "offerflow")


def parse_override(text: str) -> tuple[str, Any]:
    """`optimize.budget=5000` -> ("optimize.budget", 5000); values are parsed as YAML scalars/lists."""
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"--set expects KEY=VALUE with a dotted key, got {text!r}")
    return key.strip(), yaml.safe_load(value)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default="params.yaml", type=Path, help="params file (default: params.yaml)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a params.yaml key for this run, e.g. --set optimize.budget=8000 (repeatable)",
    )
    parser.add_argument("--verbose", action="store_true", help="library logs at INFO and tracebacks on errors")


def build_parser() -> argparse.ArgumentParser:
    from offerflow import __version__
    from offerflow.pipeline import PIPELINES, STAGE_NAMES, STAGES

    parser = argparse.ArgumentParser(prog="offerflow", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"offerflow {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for stage in STAGES:
        _common(commands.add_parser(stage.name, help=stage.help, description=stage.help))
    run = commands.add_parser(
        "run",
        help="run every enabled stage in order in this process, with a progress bar",
        description="Run the enabled stages (" + ", ".join(STAGE_NAMES) + ") in order.",
    )
    _common(run)
    run.add_argument("--from-stage", choices=STAGE_NAMES, default=None, help="start at this stage (earlier outputs must be current)")
    run.add_argument("--pipeline", choices=PIPELINES, default=None, help="only this pipeline's stages (default: every enabled one)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar (e.g. in CI logs)")
    flow = commands.add_parser("flow", help="run the pipeline as the Prefect flow (ephemeral Prefect, no server needed)")
    _common(flow)
    flow.add_argument("--pipeline", choices=PIPELINES, default="offers", help="which flow (default: offers, the coupon plan)")
    serve = commands.add_parser(
        "serve",
        help="serve the flow as a scheduled Prefect deployment (needs PREFECT_API_URL of a running server)",
        description="Serve the offer-allocation flow: a deployment with the cron schedule and timezone in "
        "orchestration.schedule; runs triggered from the Prefect UI/API execute in this process.",
    )
    _common(serve)
    serve.add_argument("--no-schedule", action="store_true", help="serve without the cron schedule (runs on demand)")
    serve.add_argument("--pipeline", choices=PIPELINES, default="offers", help="which flow to serve (default: offers)")
    dvc_yaml = commands.add_parser(
        "dvc-yaml",
        help="write dvc.yaml from the pipeline declaration and params.yaml",
        description="Write dvc.yaml for these params (after switching simulate, the true table, the table or the publish source).",
    )
    _common(dvc_yaml)
    dvc_yaml.add_argument("--check", action="store_true", help="exit 2 if dvc.yaml differs instead of writing it")
    prefect_yaml = commands.add_parser(
        "prefect-yaml",
        help="write prefect.yaml's deployments (schedules, names) from params.yaml",
        description="Write prefect.yaml from params.yaml's orchestration section, the one place schedules live.",
    )
    _common(prefect_yaml)
    prefect_yaml.add_argument("--check", action="store_true", help="exit 2 if prefect.yaml differs instead of writing it")
    from offerflow.publish import commands as publish_commands

    publish_commands.add_commands(commands)
    return parser


def overrides_of(args: argparse.Namespace) -> dict[str, Any]:
    return dict(parse_override(item) for item in args.overrides)


def load(args: argparse.Namespace):
    from offerflow.config import load_params

    return load_params(args.params, overrides=overrides_of(args))


def print_summary(summary: dict) -> None:
    from offerflow.summary import summary_lines

    print("\n".join(summary_lines(summary)))


def run_pipeline(params, from_stage: str | None = None, progress: bool = True, pipeline: str | None = None) -> dict:
    from tqdm import tqdm

    from offerflow.pipeline import enabled_stages, run_stage
    from offerflow.summary import pipeline_summary

    stages = enabled_stages(params, from_stage, pipeline)
    bar = tqdm(stages, desc="offerflow", unit="stage", disable=not progress, file=sys.stderr)
    for stage in bar:
        bar.set_postfix_str(stage.name)
        started = time.perf_counter()
        metrics = run_stage(stage.name, params)
        log.info("%s done in %.1fs: %s", stage.name, time.perf_counter() - started, json.dumps(metrics, default=str)[:500])
    return pipeline_summary(params, [stage.pipeline for stage in stages])


def dispatch(args: argparse.Namespace) -> int:
    from offerflow.publish import commands as publish_commands

    if args.command in publish_commands.COMMANDS:
        return publish_commands.dispatch(args)
    params = load(args)
    if args.command not in ("dvc-yaml", "prefect-yaml"):
        from offerflow.publish.recovery import recover_publication

        recover_publication(params)  # a publication killed after its commit: bring the files in line first
    if args.command == "run":
        print_summary(run_pipeline(params, args.from_stage, progress=not args.no_progress, pipeline=args.pipeline))
        return EXIT_OK
    if args.command == "flow":
        from offerflow.flows.offer_allocation import run_offer_allocation
        from offerflow.summary import pipeline_summary

        run_offer_allocation(params_file=str(args.params), overrides=overrides_of(args) or None, pipeline=args.pipeline)
        print_summary(pipeline_summary(params, [args.pipeline]))
        return EXIT_OK
    if args.command == "serve":
        from offerflow.flows.deployments import serve_flow

        serve_flow(params, args.params, overrides_of(args), schedule=not args.no_schedule, pipeline=args.pipeline)
        return EXIT_OK
    if args.command == "dvc-yaml":
        from offerflow.dvcyaml import check_dvc_yaml, write_dvc_yaml

        if args.check:
            check_dvc_yaml(params)
            print(f"{params.root / 'dvc.yaml'} is current")
        else:
            print(f"wrote {write_dvc_yaml(params)}")
        return EXIT_OK
    if args.command == "prefect-yaml":
        from offerflow.flows.prefect_yaml import check_prefect_yaml, write_prefect_yaml

        if args.check:
            check_prefect_yaml(params, args.params)
            print(f"{params.root / 'prefect.yaml'} is current")
        else:
            print(f"wrote {write_prefect_yaml(params, args.params)}")
        return EXIT_OK
    from offerflow.pipeline import run_stage

    metrics = run_stage(args.command, params)
    print(json.dumps({args.command: metrics}, default=str))
    return EXIT_OK


class CurrentStderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is now (a test's capture, a redirected stream), never to a closed one."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    @property
    def stream(self):  # noqa: D401 - logging's attribute
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def _handler(logger: logging.Logger) -> CurrentStderr:
    for handler in logger.handlers:
        if isinstance(handler, CurrentStderr):
            return handler
    handler = CurrentStderr()
    logger.addHandler(handler)
    return handler


def configure_logging(verbose: bool) -> None:
    """offerflow's own lines at INFO on stderr; third-party libraries at WARNING unless --verbose."""
    own = logging.getLogger("offerflow")
    _handler(own)
    own.setLevel(logging.INFO)
    own.propagate = False
    root = logging.getLogger()
    _handler(root).setLevel(logging.INFO if verbose else logging.WARNING)  # GX sets its loggers to INFO itself


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    verbose = getattr(args, "verbose", False)
    configure_logging(verbose)
    project_environment(getattr(args, "params", Path("params.yaml")))
    try:
        return dispatch(args)
    except BrokenPipeError:  # `offerflow show ... | head`: the reader left; not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except Exception as error:  # noqa: BLE001 - every failure becomes a clear message and an exit code
        code = exit_code_of(error)
        unexpected = not isinstance(error, OfferflowError)  # a bug, not a fault the user can fix: show where
        if verbose or unexpected:
            log.error("offerflow %s failed", args.command, exc_info=True)
        print(f"offerflow {args.command}: {type(error).__name__}: {error}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
