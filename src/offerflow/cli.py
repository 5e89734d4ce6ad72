"""`offerflow <stage>`: the command line that dvc.yaml calls and people type.

Exit codes: 0 ok, 1 other error, 2 bad params.yaml, 3 input data failed validation, 4 infeasible plan.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from offerflow.config import ConfigError, Params, load_params

EXIT_OK, EXIT_ERROR, EXIT_CONFIG, EXIT_DATA, EXIT_INFEASIBLE = 0, 1, 2, 3, 4
log = logging.getLogger("offerflow")


def parse_override(text: str) -> tuple[str, Any]:
    """`optimize.budget=5000` -> ("optimize.budget", 5000); values are parsed as YAML scalars/lists."""
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


def build_parser() -> argparse.ArgumentParser:
    from offerflow.stages import STAGES

    parser = argparse.ArgumentParser(prog="offerflow", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    helps = {
        "simulate": "draw a randomized campaign history from the true probability table",
        "validate": "check every input with the Great Expectations suites in expectations/",
        "train": "fit the causalml uplift model on the campaign history",
        "probabilities": "score every customer under every arm; aggregate the segment table",
        "optimize": "solve the segment LP (Pyomo + HiGHS) for the budget",
        "allocate": "exact customer-level allocation under the budget (in process or on Dask)",
        "publish": "assign one offer per customer and publish to the database and files",
    }
    for stage in STAGES:
        _common(commands.add_parser(stage, help=helps[stage], description=helps[stage]))
    run = commands.add_parser(
        "run",
        help="run every stage in order in this process, with a progress bar",
        description="Run simulate (when enabled), validate, train, probabilities, optimize and publish in order.",
    )
    _common(run)
    run.add_argument("--from-stage", choices=STAGES, default=None, help="start at this stage (earlier outputs must exist)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar (e.g. in CI logs)")
    flow = commands.add_parser(
        "flow", help="run the pipeline as the Prefect flow (ephemeral Prefect, no server needed)"
    )
    _common(flow)
    serve = commands.add_parser(
        "serve",
        help="serve the flow as a scheduled Prefect deployment (needs PREFECT_API_URL of a running server)",
        description="Serve the offer-allocation flow: a deployment with the cron schedule and timezone in "
        "orchestration.schedule; runs triggered from the Prefect UI/API execute in this process.",
    )
    _common(serve)
    serve.add_argument("--no-schedule", action="store_true", help="serve without the cron schedule (runs on demand)")
    from offerflow.publish import commands as publish_commands

    publish_commands.add_commands(commands)
    return parser


def overrides_of(args: argparse.Namespace) -> dict[str, Any]:
    return dict(parse_override(item) for item in args.overrides)


def load(args: argparse.Namespace) -> Params:
    return load_params(args.params, overrides=overrides_of(args))


def print_summary(summary: dict) -> None:
    def money(value: Any) -> str:
        return "n/a" if value is None else f"{value:,.2f} USD"

    print("offerflow summary")
    print(f"  budget:                           {money(summary['budget'])}")
    conversions = summary["expected_incremental_conversions"]
    print(f"  expected incremental conversions: {conversions:,.2f}" if conversions is not None else "  n/a")
    print(f"  expected coupon cost:             {money(summary['expected_coupon_cost'])}")
    print(f"  cost per incremental conversion:  {money(summary['cost_per_incremental_conversion'])}")
    if summary.get("recommended_budget") is not None:
        print(f"  recommended budget (frontier):    {money(summary['recommended_budget'])}")
    print(f"  published run {summary['run_id']} to: {', '.join(str(x) for x in summary['published_to'] if x)}")


def run_pipeline(params: Params, from_stage: str | None = None, progress: bool = True) -> dict:
    from tqdm import tqdm

    from offerflow.stages import STAGES, pipeline_summary, run_stage

    stages = list(STAGES[STAGES.index(from_stage):] if from_stage else STAGES)
    if not params.simulate.enabled and "simulate" in stages:
        stages.remove("simulate")
    bar = tqdm(stages, desc="offerflow", unit="stage", disable=not progress, file=sys.stderr)
    for stage in bar:
        bar.set_postfix_str(stage)
        started = time.perf_counter()
        metrics = run_stage(stage, params)
        log.info("%s done in %.1fs: %s", stage, time.perf_counter() - started, json.dumps(metrics, default=str))
    return pipeline_summary(params)


def dispatch(args: argparse.Namespace) -> int:
    from offerflow.publish import commands as publish_commands

    if args.command in publish_commands.COMMANDS:
        return publish_commands.dispatch(args)
    params = load(args)
    if args.command == "run":
        print_summary(run_pipeline(params, args.from_stage, progress=not args.no_progress))
        return EXIT_OK
    if args.command == "flow":
        from offerflow.flows.offer_allocation import run_offer_allocation

        print_summary(run_offer_allocation(params_file=str(args.params), overrides=overrides_of(args) or None))
        return EXIT_OK
    if args.command == "serve":
        from offerflow.flows.deployments import serve_flow

        serve_flow(params, args.params, overrides_of(args), schedule=not args.no_schedule)
        return EXIT_OK
    from offerflow.stages import run_stage

    metrics = run_stage(args.command, params)
    print(json.dumps({args.command: metrics}, default=str))
    return EXIT_OK


def exit_code_for(error: BaseException) -> int:
    """Map the domain errors to exit codes without importing heavy modules up front."""
    names = {type_.__name__ for type_ in type(error).__mro__}
    if "ConfigError" in names:
        return EXIT_CONFIG
    if names & {"DataValidationError", "InputFileError"}:
        return EXIT_DATA
    if "InfeasiblePlanError" in names:
        return EXIT_INFEASIBLE
    return EXIT_ERROR


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("pyomo", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    try:
        return dispatch(args)
    except Exception as error:  # noqa: BLE001 - every failure becomes a clear message and an exit code
        code = exit_code_for(error)
        if code == EXIT_ERROR:
            log.exception("offerflow %s failed", args.command)
        print(f"offerflow {args.command}: {type(error).__name__}: {error}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
