"""params.yaml sections about running and showing the plan: publish, orchestration, figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from offerflow.sections import Section as _Section


SQL_IDENTIFIER = r"^[a-z_][a-z0-9_]*$"  # lower case: PostgreSQL folds unquoted names, so users can type them
ENV_VAR_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
# Keys that would put a credential into params.yaml (which is committed to git): refused with a pointer.
_CREDENTIAL_KEYS = ("url", "database_url", "db_url", "password", "dsn", "connection_string")


class PublishConfig(_Section):
    """Where and how assignments are published. Credentials never live here: see url_env / secret_block."""

    source: Literal["segment_plan", "customer_plan"] = "segment_plan"
    target: Literal["sqlite", "postgresql", "files"] = "sqlite"
    sqlite_path: Path = Path("data/published/offerflow.sqlite")
    files_dir: Path = Path("data/published")
    url_env: str = Field("OFFERFLOW_DB_URL", pattern=ENV_VAR_NAME)  # env var holding the PostgreSQL URL
    secret_block: str | None = Field(None, min_length=1)  # Prefect Secret block holding the URL (wins over url_env)
    db_schema: str | None = Field(None, alias="schema", pattern=SQL_IDENTIFIER, max_length=63)  # PostgreSQL only
    table_prefix: str = Field("", pattern=r"^$|" + SQL_IDENTIFIER, max_length=40)
    seed: int = Field(11, ge=0)
    busy_timeout_seconds: float = Field(30.0, gt=0)  # SQLite busy timeout / PostgreSQL lock timeout
    connect_timeout_seconds: int = Field(10, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _no_credentials(cls, raw: Any) -> Any:
        if isinstance(raw, dict):
            for key in ("url_env", "secret_block"):
                if looks_like_credential(raw.get(key)):
                    raise ValueError(
                        f"publish.{key} holds what looks like a database URL or password (not shown); it must hold a "
                        f"{'variable' if key == 'url_env' else 'Prefect Secret block'} name, and the URL goes into that "
                        f"{'environment variable' if key == 'url_env' else 'block'}, never into params.yaml"
                    )
            found = sorted(key for key in raw if str(key).lower() in _CREDENTIAL_KEYS)
            if found:
                raise ValueError(
                    f"publish.{found[0]}: database URLs and passwords never go in params.yaml; put the URL in the "
                    "environment variable named by publish.url_env (default OFFERFLOW_DB_URL) or in a Prefect "
                    "Secret block named by publish.secret_block"
                )
        return raw


def looks_like_credential(value: Any) -> bool:
    """A URL with a scheme or a user@host part: never to be echoed in a message."""
    return isinstance(value, str) and ("://" in value or "@" in value)


class ScheduleConfig(_Section):
    cron: str = "0 6 * * 1"
    timezone: str = "Europe/Berlin"


class OrchestrationConfig(_Section):
    retries: int = Field(2, ge=0)
    retry_delay_seconds: float = Field(5.0, ge=0)
    task_timeout_seconds: float = Field(1800.0, gt=0)
    dvc_commit: bool = True
    deployment_name: str = "weekly"
    schedule: ScheduleConfig = ScheduleConfig()  # the coupon plan's flow
    scenario_schedules: dict[Literal["discounts", "journey"], ScheduleConfig] = Field(
        default_factory=lambda: {
            "discounts": ScheduleConfig(cron="0 7 1 * *"),  # monthly
            "journey": ScheduleConfig(cron="0 5 * * *"),  # daily: next actions move with the journeys
        }
    )
    task_runner: Literal["thread", "dask"] = "thread"
    dask_address: str | None = None  # an existing dask.distributed scheduler; None: a LocalCluster
    dask_workers: int = Field(2, ge=1)


class FiguresConfig(_Section):
    # plain-language name of each segment column, for axis labels; a column left out is shown by its name
    segment_names: dict[str, str] = Field(
        default_factory=lambda: {"age_cat": "age group", "freq_cat": "purchase frequency (visits)"}
    )
    outcome: str = "visit"  # what a conversion is, in the analyst's words: "probability of a visit"
    currency: str = "USD"  # shown with coupon values: "dm2: 10 USD coupon"

    @field_validator("outcome", "currency")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()

    @field_validator("segment_names")
    @classmethod
    def _names_not_blank(cls, value: dict[str, str]) -> dict[str, str]:
        blank = sorted(column for column, name in value.items() if not str(name).strip())
        if blank:
            raise ValueError(f"blank names for segment columns {blank}")
        return {column: name.strip() for column, name in value.items()}
