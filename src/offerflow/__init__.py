"""offerflow: which customer gets which offer, within a budget."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("offerflow")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
