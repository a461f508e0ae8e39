"""The one typed settings object: every knob comes from an environment variable.

Variable names are `PREFLIGHT_<FIELD>` (e.g. `PREFLIGHT_API_PORT`, in any case), except
`DATABASE_URL`, which keeps the name every tool and platform already uses. Lists are
written as JSON. Values given to `Settings(...)` win over the environment.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from functools import lru_cache
from ipaddress import ip_network
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

REPO_ROOT = Path(__file__).resolve().parent

PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "password"})
PREFIX = "PREFLIGHT_"


class Settings(BaseModel):
    # Errors must never echo inputs: they may hold secrets.
    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _from_environment(cls, given: Any) -> Any:
        """The environment's values, under those given. Read by hand rather than with
        pydantic-settings, whose import (0.1 s) was a third of `preflight plan`'s start."""
        if not isinstance(given, dict):
            return given
        environment = {name.upper(): value for name, value in os.environ.items()}
        found: dict[str, Any] = {}
        for name, field in cls.model_fields.items():
            alias = field.validation_alias
            names = alias.choices if isinstance(alias, AliasChoices) else [PREFIX + name.upper()]
            value = next((environment[str(n)] for n in names if str(n) in environment), None)
            if value is None:
                continue
            if _is_list(field.annotation):
                try:
                    found[name] = json.loads(value)
                except json.JSONDecodeError:
                    # The name, not the value: settings errors never echo their inputs.
                    raise ValueError(f'{name} must be a JSON list, like ["a", "b"]') from None
            else:
                found[name] = value
        return found | given

    environment: Literal["development", "production"] = "development"
    """`production` refuses placeholder secrets and the embedded SQLite default."""
    state_dir: Path = REPO_ROOT / ".preflight"
    """Where the embedded stack keeps its files (SQLite knowledge base, Temporal's database)."""
    database_url: str = Field(
        default="",
        validation_alias=AliasChoices("DATABASE_URL", "PREFLIGHT_DATABASE_URL"),
    )
    """SQLAlchemy URL. Empty means the embedded SQLite file in `state_dir`.
    PostgreSQL: `postgresql+psycopg://user:pass@host:5432/db`."""
    measured_data_dir: Path = REPO_ROOT.parent / "shared" / "data" / "measured"
    """Folder of measured serving benchmarks (CSV) loaded into the knowledge base."""
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_task_queue: str = "preflight"
    temporal_ui_port: int = Field(default=8233, ge=1, le=65535)
    """Web UI port of the embedded Temporal dev server (`make run` only)."""
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=64)
    """Worker processes `make run` starts: planning is CPU-bound, so one per core."""
    worker_metrics_host: str = "127.0.0.1"
    worker_metrics_port: int = Field(default=9464, ge=0, le=65535)
    """A worker's /metrics for Prometheus; 0 serves none. `make run` gives its workers this
    port and the next ones."""
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    api_url: str | None = Field(default=None, pattern=r"^https?://")
    """A running Preflight API that `preflight plan` and `preflight whatif` ask (its
    knowledge base, calibrated by what its deployments showed) instead of planning here."""
    api_key: SecretStr | None = None
    """The caller's key for `api_url` (`preflight users add` makes one)."""
    llm_base_url: str | None = None
    """OpenAI-compatible endpoint for intent extraction; unset means rules only."""
    llm_model: str | None = None
    llm_api_key: SecretStr | None = None
    llm_timeout_s: float = Field(default=20.0, gt=0)
    """Seconds one LLM request may take; a chat turn waits at most two such attempts, then
    the rules answer alone."""
    approved_models: list[str] | None = None
    """Catalog model ids the cluster admins allow (JSON list); unset allows the catalog."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    auth_mode: Literal["api_key", "proxy_header"] = "api_key"
    """How the API knows who calls: `api_key` checks a key against the keys file;
    `proxy_header` trusts the user and roles an authenticating proxy puts in headers."""
    api_keys_file: Path | None = None
    """JSON list of `{user, roles, key_sha256}` (hashes only). None: `state_dir/api_keys.json`."""
    proxy_user_header: str = Field(default="X-Forwarded-User", min_length=1)
    """Header holding the user name, in `proxy_header` mode."""
    proxy_roles_header: str = Field(default="X-Forwarded-Roles", min_length=1)
    """Header holding the user's roles, comma-separated, in `proxy_header` mode."""
    trusted_proxies: list[str] = ["127.0.0.1"]
    """Client addresses or networks (CIDR) allowed to assert the proxy headers (JSON list);
    a request from anywhere else gets 401."""
    require_distinct_approver: bool = True
    """Approval policy: an approver may not approve a request they made themselves."""
    approval_remind_after: dt.timedelta = Field(default=dt.timedelta(days=1), gt=dt.timedelta(0))
    """Approval policy: remind after this long without a decision, and again each time
    (an ISO 8601 duration: `P1D`, `PT2H`)."""
    approval_expire_after: dt.timedelta = Field(default=dt.timedelta(days=7), gt=dt.timedelta(0))
    """Approval policy: drop a selection nobody decided on within this long."""
    monitor_interval: dt.timedelta = Field(
        default=dt.timedelta(minutes=5), ge=dt.timedelta(seconds=10)
    )
    """How often a deployed session checks its SLOs."""
    rehearse: bool = False
    """GitOps mode without a cluster: rehearse each deployment on this machine (emulator,
    local Prometheus, a little traffic shaped like the spec), labelled as a rehearsal.
    `make run` turns it on."""
    prometheus_url: str | None = Field(default=None, pattern=r"^https?://")
    """The Prometheus that scrapes the deployments' vLLM metrics; unset means SLO checks
    report that no metrics source is configured (and measure nothing)."""
    slo_window: str = Field(default="5m", pattern=r"^[1-9][0-9]*[smh]$")
    """The rate window of the SLO queries (PromQL duration)."""
    monitor_breach_after: int = Field(default=3, ge=1)
    """Breached checks in a row that make a sustained breach (and a proposal)."""
    deploy_mode: Literal["auto", "gitops", "cluster"] = "auto"
    """Where sessions deploy: `gitops` writes manifests to `gitops_dir`; `cluster` applies
    them with the kubeconfig (or in-cluster config); `auto` is `cluster` when
    `kube_context` is set, else `gitops`. Never chosen by the API's callers."""
    # planner.deployment_plan.ServingApi, spelt out: settings import nothing of the planner.
    serving_api: Literal["llminferenceservice", "inferenceservice"] = "llminferenceservice"
    """What plans render to serve a model: KServe's `llminferenceservice` (KServe 0.17 and
    later) or the classic `inferenceservice` pair. A cluster target overrides it with what
    the cluster serves."""
    # planner.cluster.ClusterPolicy, spelt out.
    cluster_gpus: Literal["free", "present", "any"] = "present"
    """With a cluster target, which GPUs sessions' recommendations use: only kinds with a
    free GPU now, kinds the cluster has, or any (options on kinds it lacks say so)."""
    gitops_dir: Path | None = None
    """The GitOps folder sessions write to. None: `state_dir/gitops`."""
    kube_context: str | None = None
    """The kubeconfig context sessions deploy to in `cluster` mode (None: the current one,
    or the in-cluster service account)."""
    smoke_endpoint: str | None = None
    """Base URL (`http://host:port`) the smoke request goes to when the cluster reports no
    URL, e.g. a port-forward or a GitOps rehearsal; None skips the smoke test then."""
    deploy_namespace: str = Field(
        default="default", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63
    )
    """The Kubernetes namespace sessions deploy into (a DNS-1123 label)."""

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.state_dir / 'preflight.db'}"

    @property
    def resolved_api_keys_file(self) -> Path:
        return self.api_keys_file or self.state_dir / "api_keys.json"

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses(cls, proxies: list[str]) -> list[str]:
        for i, proxy in enumerate(proxies):
            try:
                ip_network(proxy, strict=False)
            except ValueError:
                # The position, not the value: settings errors never echo their inputs.
                raise ValueError(f"entry {i} is not an IP address or CIDR network") from None
        return proxies

    @field_validator("smoke_endpoint")
    @classmethod
    def _endpoint(cls, endpoint: str | None) -> str | None:
        if endpoint is not None and not endpoint.startswith(("http://", "https://")):
            raise ValueError("smoke_endpoint must be an http:// or https:// URL")
        return endpoint

    @model_validator(mode="after")
    def _worker_ports_exist(self) -> Settings:
        last = self.worker_metrics_port + self.workers - 1
        if self.worker_metrics_port and last > 65535:
            raise ValueError(
                f"PREFLIGHT_WORKER_METRICS_PORT leaves no port for worker {self.workers} "
                f"({last} > 65535): lower it, or set it to 0 for no /metrics"
            )
        return self

    @model_validator(mode="after")
    def _production_is_not_a_demo(self) -> Settings:
        if self.environment != "production":
            return self
        if not self.database_url or self.database_url.startswith("sqlite"):
            raise ValueError("production needs DATABASE_URL pointing at PostgreSQL")
        key = self.llm_api_key.get_secret_value() if self.llm_api_key else None
        if self.llm_base_url and key is not None and key.lower() in PLACEHOLDER_SECRETS:
            raise ValueError("PREFLIGHT_LLM_API_KEY is a placeholder; set a real key")
        return self


def _is_list(annotation: Any) -> bool:
    """Whether a field holds a list (`list[str]`, `list[str] | None`): written as JSON."""
    return get_origin(annotation) is list or any(
        get_origin(arg) is list for arg in get_args(annotation)
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
