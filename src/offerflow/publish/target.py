"""The publish target named in params.yaml, with its credentials resolved and kept out of sight.

params.yaml names the kind of target (sqlite, postgresql, files) and where to find credentials
(an environment variable, or a Prefect Secret block), never the credentials themselves. Every
string that may reach a log, an exception, a metrics file or the console goes through
`mask_secrets`, so a password in the URL is never printed, even when the driver quotes it back.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, quote_plus

from sqlalchemy import URL, make_url
from sqlalchemy.exc import ArgumentError

from offerflow.config import Params
from offerflow.errors import OfferflowError

SQLITE, POSTGRESQL, FILES = "sqlite", "postgresql", "files"
MASK = "***"
POSTGRES_DRIVER = "postgresql+psycopg"


class PublishTargetError(OfferflowError, RuntimeError):
    """The publish target cannot be reached or used; the message names it, never with its password.

    Retryable only when the fault may pass (refused connection, lock timeout), never for a wrong
    password or a malformed URL: a retry would fail the same way (and count as another failed login).
    """

    def __init__(self, message: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class PublishTarget:
    """A resolved target. `url` may hold a password: never print it, print `description`."""

    kind: str
    description: str
    url: str | None = field(default=None, repr=False)
    directory: Path | None = None  # files target
    schema: str | None = None
    prefix: str = ""
    busy_timeout_seconds: float = 30.0
    connect_timeout_seconds: int = 10
    secrets: tuple[str, ...] = field(default=(), repr=False)

    def mask(self, text: str) -> str:
        return mask_secrets(text, self.secrets)


def url_secrets(url: str) -> tuple[str, ...]:
    """The password of a URL in every spelling a driver or a log might use (raw and percent-encoded)."""
    try:
        password = make_url(url).password
    except (ArgumentError, ValueError):
        return (url,)  # unparsable: the whole string may be a secret
    if not password:
        return ()
    spellings = {str(password), quote(str(password), safe=""), quote_plus(str(password))}
    return tuple(sorted((s for s in spellings if s), key=len, reverse=True))


def mask_secrets(text: str, secrets: tuple[str, ...]) -> str:
    """`text` with every occurrence of each secret replaced by ***."""
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


def describe_url(url: str) -> str:
    """The URL with its password shown as ***: safe for logs, metrics and error messages."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return "<unparsable database URL>"
    if "password" in parsed.query:
        parsed = parsed.update_query_dict({"password": MASK})
    return parsed.render_as_string(hide_password=True)


def read_secret_block(name: str) -> str:
    """The value of a Prefect Secret block; Prefect is imported only when a block is configured."""
    try:
        from prefect.blocks.system import Secret

        value = Secret.load(name).get()
    except Exception as error:  # noqa: BLE001 - any failure (no block, no API) is one clear message
        raise PublishTargetError(
            f"publish.secret_block: cannot load the Prefect Secret block {name!r}: {type(error).__name__}: {error}"
        ) from None
    if not isinstance(value, str) or not value.strip():
        raise PublishTargetError(f"publish.secret_block: the Prefect Secret block {name!r} does not hold a URL string")
    return value.strip()


def postgres_url(params: Params) -> tuple[str, str]:
    """(URL, where it came from) for the postgresql target: the Secret block if named, else the env var."""
    config = params.publish
    if config.secret_block:
        return read_secret_block(config.secret_block), f"Prefect Secret block {config.secret_block!r}"
    value = os.environ.get(config.url_env, "").strip()
    if not value:
        raise PublishTargetError(
            f"publish.target is postgresql but the environment variable {config.url_env} (publish.url_env) is not "
            "set and publish.secret_block is not set: export e.g. "
            f"{config.url_env}=postgresql+psycopg://USER:PASSWORD@HOST:5432/DATABASE"
        )
    return value, f"environment variable {config.url_env}"


def normalize_postgres_url(raw: str, origin: str) -> str:
    """A psycopg 3 URL; other databases or drivers are refused (message masked)."""
    try:
        url = make_url(raw)
        url.port  # a malformed port only fails when read
    except (ArgumentError, ValueError):
        raise PublishTargetError(
            f"{origin} does not hold a valid database URL (expected postgresql+psycopg://USER:PASSWORD@HOST:5432/DATABASE; "
            "the value is not shown)"
        ) from None
    if url.get_backend_name() not in ("postgresql", "postgres"):  # postgres:// is what many hosts hand out
        raise PublishTargetError(
            f"{origin} must hold a postgresql:// URL for publish.target postgresql, got {describe_url(raw)}"
        )
    return url.set(drivername=POSTGRES_DRIVER).render_as_string(hide_password=False)


def resolve_target(params: Params) -> PublishTarget:
    """The configured target with its URL resolved (no connection is made yet)."""
    config = params.publish
    common = {
        "busy_timeout_seconds": config.busy_timeout_seconds,
        "connect_timeout_seconds": config.connect_timeout_seconds,
        "prefix": config.table_prefix,
    }
    if config.target == SQLITE:
        path = params.path(config.sqlite_path).resolve()
        url = URL.create("sqlite", database=str(path)).render_as_string()
        shown = URL.create("sqlite", database=str(config.sqlite_path)).render_as_string()
        return PublishTarget(SQLITE, shown, url=url, **common)
    if config.target == FILES:
        return PublishTarget(FILES, f"files:{config.files_dir.as_posix()}", directory=params.path(config.files_dir), **common)
    raw, origin = postgres_url(params)
    secrets = url_secrets(raw)
    url = normalize_postgres_url(raw, origin)
    return PublishTarget(
        POSTGRESQL, describe_url(url), url=url, schema=config.db_schema, secrets=secrets + url_secrets(url), **common
    )


def open_store(target: PublishTarget):
    """The store for a target: SqlStore for SQLite and PostgreSQL, FileStore for files."""
    if target.kind == FILES:
        from offerflow.publish.files import FileStore

        return FileStore(target)
    from offerflow.publish.store import SqlStore

    return SqlStore(target)
