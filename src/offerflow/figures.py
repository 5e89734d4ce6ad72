"""One explicit style for every figure offerflow draws, and byte-stable PNG files.

causalml changes matplotlib's global style when it is imported, so a figure drawn after training (the
Prefect flow, `offerflow run`) would differ from the same figure drawn in a fresh process (`dvc repro`).
Every figure is therefore drawn inside `figure_style()`, which starts from matplotlib's defaults, and
saved without metadata: the bytes depend on the data only.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

from offerflow.io import write_with

DPI = 90
STYLE = {"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8, "figure.dpi": DPI}


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@contextlib.contextmanager
def figure_style() -> Iterator:
    """matplotlib's defaults plus offerflow's font sizes, whatever another library set globally; yields pyplot."""
    plt = pyplot()
    with plt.style.context("default"), plt.rc_context(STYLE):
        yield plt


def save_png(figure, target: Path | str) -> Path:
    """Write the figure atomically, without metadata, and close it."""
    plt = pyplot()
    write_with(target, lambda tmp: figure.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None}))
    plt.close(figure)
    return Path(target)


def plot_message(text: str, target: Path | str) -> Path:
    """A figure that says why there is no picture (the output a reader expects still exists)."""
    import textwrap

    with figure_style() as plt:
        figure, ax = plt.subplots(figsize=(7, 2.2))
        ax.axis("off")
        ax.text(0.5, 0.5, "\n".join(textwrap.wrap(text, 80)), ha="center", va="center", wrap=True)
        return save_png(figure, target)
