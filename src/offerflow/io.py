"""All file I/O in one place: where each stage reads and writes, atomically and deterministically.

Stage functions never touch the file system; the runners in `stages.py` read inputs and write
outputs through these helpers, so the CLI, `dvc repro` and the Prefect flow share one layout.
Writes go to a temporary file in the same folder and are renamed into place, so a crash never
leaves a half-written output behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import pandas as pd

if TYPE_CHECKING:
    from offerflow.config import Params


class InputFileError(ValueError):
    """An input file cannot be read as a table; names the file and the reason."""


@dataclass(frozen=True)
class Layout:
    """Output paths of every stage, relative to the project root (mirrors dvc.yaml)."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def validation_dir(self) -> Path:
        return self.root / "reports/validation"

    @property
    def validation_summary(self) -> Path:
        return self.validation_dir / "summary.json"

    @property
    def model(self) -> Path:
        return self.root / "models/uplift_model.joblib"

    @property
    def model_metadata(self) -> Path:
        return self.root / "models/uplift_model.json"

    @property
    def train_metrics(self) -> Path:
        return self.root / "reports/train_metrics.json"

    @property
    def customer_probabilities(self) -> Path:
        return self.root / "data/processed/customer_probabilities.parquet"

    @property
    def segment_probabilities(self) -> Path:
        return self.root / "data/processed/segment_probabilities.csv"

    @property
    def probabilities_metrics(self) -> Path:
        return self.root / "reports/probabilities_metrics.json"

    @property
    def segment_plan(self) -> Path:
        return self.root / "data/processed/segment_plan.csv"

    @property
    def optimize_metrics(self) -> Path:
        return self.root / "reports/optimize_metrics.json"

    @property
    def customer_plan(self) -> Path:
        return self.root / "data/processed/customer_plan.parquet"

    @property
    def allocate_metrics(self) -> Path:
        return self.root / "reports/allocate_metrics.json"

    @property
    def assignments(self) -> Path:
        return self.root / "data/published/assignments.csv"

    @property
    def publish_metrics(self) -> Path:
        return self.root / "reports/publish_metrics.json"


def file_sha256(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_path(target: Path | str) -> Iterator[Path]:
    """Yield a temporary path next to `target`; rename it over `target` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; outputs should be readable like any file
    try:
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_with(target: Path | str, writer: Callable[[Path], Any]) -> Path:
    with atomic_path(target) as tmp:
        writer(tmp)
    return Path(target)


def write_csv(frame: pd.DataFrame, target: Path | str) -> Path:
    return write_with(target, lambda tmp: frame.to_csv(tmp, index=False, float_format="%.10g", lineterminator="\n"))


def write_parquet(frame: pd.DataFrame, target: Path | str) -> Path:
    return write_with(target, lambda tmp: frame.to_parquet(tmp, index=False, compression="zstd"))


def write_json(payload: Any, target: Path | str) -> Path:
    text = json.dumps(payload, indent=2, sort_keys=True, default=_json_default) + "\n"
    return write_with(target, lambda tmp: tmp.write_text(text))


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def read_json(path: Path | str) -> Any:
    return json.loads(Path(path).read_text())


def read_table(path: Path | str) -> pd.DataFrame:
    """Read a CSV or Parquet file; an empty or unparsable file is an InputFileError naming it."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise InputFileError(f"{path}: file is empty (no header, no rows)")
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, sep=None, engine="python") if path.suffix == ".txt" else pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise InputFileError(f"{path}: cannot be read as a table: {exc}") from exc


def prob_column(arm: str) -> str:
    """Column holding the conversion probability of `arm` (the visit_probability.csv convention)."""
    return f"prob_{arm}"


def prob_columns(arms: list[str]) -> list[str]:
    return [prob_column(arm) for arm in arms]


CUSTOMER_ID = "customer_id"
ARM = "arm"
CONVERTED = "converted"


def read_customers(params: "Params") -> pd.DataFrame:
    """Customers with the id column renamed to the canonical `customer_id`."""
    frame = read_table(params.path(params.data.customers))
    return frame.rename(columns={params.data.customer_id: CUSTOMER_ID})


def read_history(params: "Params") -> pd.DataFrame:
    """Campaign history with canonical `customer_id`, `arm` and `converted` columns."""
    frame = read_table(params.path(params.data.history))
    return frame.rename(
        columns={
            params.data.customer_id: CUSTOMER_ID,
            params.data.arm_column: ARM,
            params.data.outcome_column: CONVERTED,
        }
    )
