"""File I/O in one place: atomic, deterministic writes, tolerant reads, content hashes.

Domain functions never touch the file system; the stage runners (offerflow.stages) read inputs and
write outputs through these helpers, at the paths of offerflow.catalog. Writes go to a temporary
file in the same folder and are renamed into place, so a crash never leaves a half-written output.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

if TYPE_CHECKING:
    import pandas as pd

from offerflow.errors import InputFileError


def file_md5(path: Path | str) -> str:
    """md5 of the file's bytes: the `md5` DVC 3 writes into dvc.lock for a file."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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


DIGITS = 10  # significant digits kept in outputs: absorbs solver and summation round-off, keeps files byte-stable


def round_significant(value: float, digits: int = DIGITS) -> float:
    """Round to `digits` significant digits so round-off never changes a written byte."""
    return float(f"{float(value):.{digits}g}")


def significant(value: Any, digits: int = DIGITS) -> Any:
    """round_significant for every float inside dicts and lists (ints, strings and None stay as they are)."""
    if isinstance(value, dict):
        return {key: significant(item, digits) for key, item in value.items()}
    if isinstance(value, list):
        return [significant(item, digits) for item in value]
    if isinstance(value, float):
        return round_significant(value, digits)
    return value


def read_json(path: Path | str) -> Any:
    return json.loads(Path(path).read_text())


def read_table(path: Path | str) -> pd.DataFrame:
    """Read a CSV or Parquet file; an empty or unparsable file is an InputFileError naming it."""
    import pandas as pd

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
