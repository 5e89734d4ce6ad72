"""What a stage declaration holds: its runner, the params keys, files and code it uses, when it runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from offerflow import dvcplots
from offerflow.catalog import Catalog, headline_name, stamp_name
from offerflow.config import Params

Condition = Callable[[Params], bool]


def always(_: Params) -> bool:
    return True


@dataclass(frozen=True)
class Output:
    """One file a stage writes. kind: out (data), report (detailed JSON), figure (PNG), plot (CSV a DVC plot
    reads), metric (the stage's headline numbers, written from `Stage.headline`, never declared by hand)."""

    name: str
    kind: str = "out"
    when: Condition = always
    plot: dvcplots.PlotDefinitions | None = None  # (params, path) -> dvc.yaml plot definitions reading this file
    derive: Callable[[Params, Catalog], None] | None = None  # written from the stage's other outputs after it ran

    @property
    def cache(self) -> bool:
        """Data, details, figures and stamps go to the DVC cache (and a remote); the small files people diff
        across commits and experiments, headline metrics and plot data, stay beside the code in git."""
        return self.kind not in ("metric", "plot")


@dataclass(frozen=True)
class Input:
    name: str
    when: Condition = always


@dataclass(frozen=True)
class Stage:
    name: str  # CLI subcommand, dvc.yaml stage
    does: str  # what it does, in the business's words: the Prefect task name
    help: str  # one line for `offerflow --help`
    runner: Callable[[Params], dict]  # reads and writes through Catalog(params)
    params: tuple[str, ...]  # params.yaml keys it reads
    inputs: tuple[Input, ...]
    outputs: tuple[Output, ...]
    code: tuple[str, ...]  # offerflow modules it runs, relative to the package (besides CORE_CODE)
    phase: str  # the business step it belongs to (PHASES): the Prefect flow runs phase by phase
    enabled: Condition = always
    pipeline: str = "offers"  # offers (coupons within a budget) | discounts | journey: one Prefect flow each
    extra_params: Callable[[Params], tuple[str, ...]] = field(default=lambda _: ())
    extra_code: Callable[[Params], tuple[str, ...]] = field(default=lambda _: ())
    # headline metrics: (key, "output:dotted.path") pairs read from its reports (offerflow.headline)
    headline: tuple[tuple[str, str], ...] = ()

    def params_for(self, params: Params) -> tuple[str, ...]:
        return (*self.params, *self.extra_params(params))

    def inputs_for(self, params: Params) -> list[str]:
        return [item.name for item in self.inputs if item.when(params)]

    def outputs_for(self, params: Params) -> list[Output]:
        headline = (Output(headline_name(self.name), "metric"),) if self.headline else ()
        return [out for out in (*self.outputs, *headline, Output(stamp_name(self.name))) if out.when(params)]

    def code_for(self, params: Params) -> tuple[str, ...]:
        runner = f"stages/{self.name if self.pipeline == 'offers' else self.pipeline}.py"
        declaration = f"declarations/{self.pipeline}.py"
        return (*CORE_CODE, declaration, runner, *self.code, *self.extra_code(params))



PHASES = ("prepare data", "learn responses", "decide offers", "check against simple rules", "publish")
# pipeline.py runs every stage (its declaration module declares its headline); headline.py writes it
CORE_CODE = ("config", "catalog.py", "schema.py", "errors.py", "io.py", "provenance.py", "stages/inputs.py",
             "pipeline.py", "declarations/stage.py", "headline.py")
