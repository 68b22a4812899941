"""Configuration: one TOML file and/or ``SMSCONNECTOR_*`` environment variables.

Environment variables override the file. Nested keys are joined with a double underscore:
``SMSCONNECTOR_DATABASE_URL``, ``SMSCONNECTOR_SENDER__RETRY_FOR_SECONDS``, ``SMSCONNECTOR_PLUGINS__TWILIO__AUTH_TOKEN``.
Every plugin reads its own ``[plugins.<name>]`` section in its ``smsconnector_configure`` hook.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from .decisions import SegmentPolicy
from .errors import ConfigError
from .messages import InvalidNumber, to_sender

ENV_PREFIX = "SMSCONNECTOR_"

_M = TypeVar("_M", bound=BaseModel)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Section):
    """What ``smsconnector serve`` allows a client, so that it can face the internet without a proxy in front.

    A client that sends its request too slowly is answered 408 and cut off; one whose headers are too many or too
    large, 431. Past ``max_connections`` a request is answered 503, which a provider takes as "send it again".
    """

    #: seconds a client has to send a request's line and headers, from connecting (or, on a kept-alive connection,
    #: from the request's first byte)
    header_timeout_seconds: float = Field(10.0, gt=0)
    #: seconds a client has to send a request's body once its headers are in (at most ``max_body_bytes``)
    body_timeout_seconds: float = Field(30.0, gt=0)
    #: bytes of a request's line and headers, at most
    max_header_bytes: int = Field(16 * 1024, ge=1024)
    #: header fields a request may have, at most
    max_headers: int = Field(100, ge=10)
    #: connections open at once (and requests in progress), at most
    max_connections: int = Field(1000, ge=1)
    #: seconds an idle kept-alive connection stays open
    keep_alive_seconds: int = Field(5, ge=1)


class SenderSettings(_Section):
    """How the outbox is drained."""

    #: how long a message that keeps failing for a retryable reason is tried again, counted from when it was
    #: queued (or when a send check's deferral let it go): an outage shorter than this loses nothing
    retry_for_seconds: float = Field(6 * 3600.0, gt=0)
    #: the first retry's delay, doubling with each retry up to ``backoff_max_seconds`` (each jittered)
    backoff_base_seconds: float = Field(1.0, gt=0)
    backoff_max_seconds: float = Field(300.0, gt=0)
    #: segments a second per sender number when the number has no rate of its own; 0 turns throttling off
    default_rate_per_second: float = Field(1.0, ge=0)
    poll_interval_seconds: float = Field(1.0, gt=0)
    #: how long a claimed outbox row stays with one sender before another may take it over
    lease_seconds: float = Field(60.0, gt=0)
    batch_size: int = Field(100, ge=1, le=10_000)
    #: concurrent sends in flight, across all numbers
    concurrency: int = Field(64, ge=1, le=10_000)
    enabled: bool = True

    @model_validator(mode="before")
    @classmethod
    def _no_attempt_count(cls, data: Any) -> Any:
        # Refused rather than ignored: a deployment that had lowered it to fail fast would otherwise, unawares,
        # retry for hours.
        if isinstance(data, Mapping) and "max_attempts" in data:
            raise ValueError("max_attempts was replaced by retry_for_seconds: retries last for a time, not a count")
        return data


class InboundSettings(_Section):
    """How webhooks are taken in: persisted to the inbox and answered, then routed by the inbox processor."""

    #: when a webhook is answered: ``stored`` (once its events are committed to the inbox; routing follows
    #: at once, and under a burst the provider is never kept waiting) or ``routed`` (once they were routed too)
    acknowledge: Literal["stored", "routed"] = "stored"
    #: seconds a webhook may wait for its commit before the host answers 503 (Twilio gives up at 15)
    timeout_seconds: float = Field(10.0, gt=0)
    #: hours a processed inbox entry is kept, so a provider's late retry is recognised at the door
    retention_hours: float = Field(24.0, gt=0)
    #: inbox entries routed in one transaction, with one statement per step for all of them, at most (on SQLite
    #: one also ends after 50 ms, since no webhook is stored while it lasts). On PostgreSQL a batch of 256 costs
    #: a fifth less CPU a message than one of 64, in the worker and in the server; more gains little
    batch_size: int = Field(256, ge=1, le=10_000)
    #: attempts at routing an entry whose processing keeps failing before it is set aside (kept, logged)
    max_attempts: int = Field(5, ge=1, le=100)


class WorkerSettings(_Section):
    """Where the background work runs: routing the inbox, draining the outbox, and the upkeep."""

    #: ``smsconnector serve`` does the work too; off, it only answers HTTP and ``smsconnector worker``
    #: processes do the work (web and worker then scale, and take cores, apart)
    in_server: bool = True
    #: how often a worker process looks for inbox entries and outbox rows that other processes stored. On
    #: PostgreSQL their commits wake it at once (LISTEN/NOTIFY), and this is the safety net: default 1 s. On
    #: SQLite nothing wakes it, and this is how soon it finds new work: default 0.05 s
    poll_interval_seconds: float | None = Field(None, gt=0, le=60)

    def poll_seconds(self, dialect: str) -> float:
        """The worker's polling interval on ``dialect``: the configured one, else its default there."""
        if self.poll_interval_seconds is not None:
            return self.poll_interval_seconds
        return 1.0 if dialect == "postgresql" else 0.05


class ApiSettings(_Section):
    """The agent and admin API."""

    #: bearer tokens with the admin role; agents get tokens of their own through the API
    admin_tokens: tuple[str, ...] = ()
    #: hours an ``Idempotency-Key`` is kept: a retry with it within that time is answered the first result
    idempotency_retention_hours: float = Field(24.0, gt=0)
    #: hours a browser session of the workspace or admin pages lasts after signing in
    session_hours: float = Field(12.0, gt=0)

    @field_validator("admin_tokens", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value


class MetricsSettings(_Section):
    """Who may read the Prometheus metrics (``/metrics``, and a worker's ``--metrics-port``)."""

    #: when set, metrics are served only to ``Authorization: Bearer <token>`` (Prometheus: ``authorization:
    #: {credentials_file: ...}`` in the scrape config); unset, to anyone who reaches the port
    token: SecretStr | None = Field(None, min_length=1)


class ProviderSettings(_Section):
    """Per-provider behaviour the deployment decides, whatever the plugin's default."""

    segment_policy: SegmentPolicy | None = None
    reassembly_timeout_seconds: float = Field(300.0, gt=0)


class NumberSettings(_Section):
    """A brand number this deployment serves."""

    number: str
    provider: str
    skill: str = "default"
    #: segments a second the carriers allow from this number (about 1 on a US long code, 100+ on a short code)
    rate_per_second: float | None = Field(None, ge=0)
    brand: str | None = None

    @field_validator("number")
    @classmethod
    def _address(cls, value: str) -> str:
        try:
            return to_sender(value)
        except InvalidNumber as exc:
            raise ValueError(str(exc)) from None


class PluginsSettings(BaseModel):
    """Which installed plugins are registered; each plugin's own ``[plugins.<name>]`` table rides along."""

    model_config = ConfigDict(extra="allow", frozen=True)

    #: installed plugins that are never imported
    disabled: tuple[str, ...] = ()
    #: plugins that stay off until named here (the simulator, which takes messages without credentials)
    enabled: tuple[str, ...] = ()


class Config(_Section):
    """The whole configuration, validated."""

    database_url: str = "sqlite:///smsconnector.db"
    #: the scheme and host providers reach this deployment at; signatures are checked against it
    public_url: str | None = None
    #: rebuild the public URL from X-Forwarded-Proto/Host (only behind a proxy you control)
    trust_forwarded_headers: bool = False
    max_body_bytes: int = Field(64 * 1024, ge=1024)
    #: the host's, its plugins' and the web server's logs, to stderr (the SQLite driver never below info: its
    #: debug lines print statements with their parameters, consumers' texts among them)
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    server: ServerSettings = ServerSettings()
    inbound: InboundSettings = InboundSettings()
    sender: SenderSettings = SenderSettings()
    worker: WorkerSettings = WorkerSettings()
    api: ApiSettings = ApiSettings()
    metrics: MetricsSettings = MetricsSettings()
    providers: dict[str, ProviderSettings] = {}
    numbers: tuple[NumberSettings, ...] = ()
    plugins: PluginsSettings = PluginsSettings()

    @field_validator("public_url")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else value

    def plugin(self, name: str) -> dict[str, Any]:
        """The ``[plugins.<name>]`` section, empty when absent."""
        section = (self.plugins.model_extra or {}).get(name, {})
        if not isinstance(section, Mapping):
            raise ConfigError(f"plugins.{name}", "must be a table")
        return dict(section)

    def provider(self, name: str) -> ProviderSettings:
        return self.providers.get(name, ProviderSettings())

    def number(self, e164: str) -> NumberSettings | None:
        """The settings of one of our brand numbers, or ``None`` when it is not configured."""
        return self._numbers_by_e164().get(e164)

    def _numbers_by_e164(self) -> dict[str, NumberSettings]:
        cache = self.__dict__.get("_number_index")
        if cache is None:
            cache = {n.number: n for n in self.numbers}
            object.__setattr__(self, "_number_index", cache)  # frozen model: cache once, read often
        return cache


def _env_tree(env: Mapping[str, str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name == ENV_PREFIX + "CONFIG":
            continue
        keys = name[len(ENV_PREFIX):].lower().split("__")
        node = tree
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(name, "conflicts with another variable")
        node[keys[-1]] = _env_value(keys, value)
    return tree


def _env_value(keys: list[str], value: str) -> Any:
    # Lists come comma-separated (SMSCONNECTOR_PLUGINS__DISABLED=ivr,adkeywords); everything else is
    # left as a string for validation to coerce.
    if keys in (["plugins", "disabled"], ["plugins", "enabled"]):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def default_config_path(env: Mapping[str, str] = os.environ) -> Path | None:
    """``$SMSCONNECTOR_CONFIG``, else ``./smsconnector.toml`` when it exists."""
    if env.get(ENV_PREFIX + "CONFIG"):
        return Path(env[ENV_PREFIX + "CONFIG"])
    local = Path("smsconnector.toml")
    return local if local.exists() else None


def load_config(
    path: Path | None = None, *, env: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> Config:
    """Read the TOML file (if any), apply environment variables and ``overrides``, and validate.

    :raises ConfigError: naming the first key that is wrong.
    """
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(str(path), "file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(str(path), f"not valid TOML: {exc}") from None
    data = _merge(data, _env_tree(os.environ if env is None else env))
    if overrides:
        data = _merge(data, overrides)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "(root)"
        raise ConfigError(key, first["msg"]) from None


def plugin_settings(source: Config | Mapping[str, Any], name: str, model: type[_M]) -> _M:
    """Validate ``[plugins.<name>]`` (from the configuration, or the section itself) into ``model``.

    :raises ConfigError: naming the first wrong key, e.g. ``plugins.twilio.account_sid``.
    """
    section = source.plugin(name) if isinstance(source, Config) else source
    try:
        return model.model_validate(section)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(".".join(["plugins", name, *map(str, first["loc"])]), first["msg"]) from None
