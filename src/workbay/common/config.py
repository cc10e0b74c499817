"""Configuration: one TOML file (a section per component) + WORKBAY_* environment variables.

Environment variables override the file: ``WORKBAY_DB__URL``, ``WORKBAY_MANAGER__PORT``, …
Unknown keys fail loudly at startup, naming the key and where it came from (the file, or the
environment variable): in the file any unknown key; in the environment any ``WORKBAY_<section>__<key>``
whose section or key does not exist (other ``WORKBAY_*`` variables without ``__`` belong to other
tools -- the CLI's ``WORKBAY_ENDPOINT``, the test suite's -- and are left alone).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def reachable_host(host: str) -> str:
    """The host other processes use for a listener bound to ``host``: a wildcard bind (every
    interface) is not an address to connect to or hand out, so it becomes loopback -- on one
    machine that reaches it; in a cluster the explicit URL settings name the real address."""
    return "127.0.0.1" if host in WILDCARD_HOSTS else host


def http_url(host: str, port: int) -> str:
    host = reachable_host(host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class DBConfig(Section):
    url: str = Field("", description="SQLAlchemy async URL; empty = SQLite under data_dir")
    echo: bool = False

    @field_validator("url")
    @classmethod
    def _async_driver(cls, v: str) -> str:
        if v and not (v.startswith("sqlite+aiosqlite://") or v.startswith("postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return v


class RedisConfig(Section):
    url: str = Field("", description="redis://host:port/db; empty = in-process (lite)")


class Secrets(Section):
    cluster: str = ""   # manager <-> agent
    storage: str = ""   # manager <-> storage-proxy, JWT signing of file tokens
    session: str = ""   # webserver cookie signing
    appproxy: str = ""  # manager <-> app-proxy, app access tokens and cookies
    database: str = ""  # managers only: encrypts secret keys, SSH private keys, TOTP seeds at rest


class ManagerConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(8091, ge=1, le=65535)
    signup_enabled: bool = False
    signup_invitation_token: str | None = None
    default_rate_limit: int = Field(10000, ge=1)
    announcement: str = ""
    scheduler_interval: float = Field(2.0, gt=0, description="seconds between scheduler ticks")
    reconcile_interval: float = Field(3.0, gt=0)
    serving_interval: float = Field(2.0, gt=0, description="seconds between passes of the model-serving "
                                    "reconciler (replica health, routing table, autoscaling)")
    service_wake_timeout: float = Field(300.0, gt=0, description="seconds a request to a service scaled "
                                        "to zero waits for its first replica before it gets 503")
    agent_lost_timeout: float = Field(30.0, gt=0, description="seconds without heartbeat")
    kernel_start_timeout: float = Field(900.0, gt=0)
    system_image: str = Field("localhost/workbay/python:3.11", description="the image of SFTP and "
                              "File Browser sessions (it must offer the sshd and filebrowser apps)")
    system_idle_timeout: float = Field(900.0, gt=0, description="seconds without transfers after "
                                       "which an SFTP or File Browser session is reclaimed")
    max_request_body: int = Field(4 * 1024 * 1024, ge=1024, le=1024**3, description="bytes: a larger "
                                  "request body is answered 413 before it is parsed (unsigned requests "
                                  "to the public /auth endpoints: at most 64 KiB)")
    trusted_proxies: list[str] = Field(
        default_factory=lambda: ["127.0.0.0/8", "::1/128"],
        description="peers whose X-Forwarded-For is believed (allowed client IPs, login throttling)")
    lockout_attempts: int = Field(10, ge=1, description="failed logins (/auth/authorize, OTP included) "
                                  "of one account before its logins are refused for lockout_seconds")
    lockout_client_attempts: int = Field(100, ge=1, description="failed logins from one client "
                                         "address before its logins are refused for lockout_seconds")
    lockout_seconds: int = Field(1200, ge=1)


class WebserverConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(8090, ge=1, le=65535)
    manager_url: str = "http://127.0.0.1:8091"
    login_session_ttl: int = Field(86400, ge=60, description="seconds of inactivity")
    lockout_attempts: int = Field(10, ge=1)
    lockout_seconds: int = Field(1200, ge=1)
    trusted_proxies: list[str] = Field(
        default_factory=list, description="reverse proxies (addresses or networks) whose "
        "X-Forwarded-For/-Host/-Proto are believed; empty = none (the headers are ignored)")
    guide_url: str = "https://webui.docs.backend.ai/en/latest/"
    signup_enabled: bool = Field(False, description="show the sign-up dialog on the login page; "
                                 "keep in sync with the manager's sign-up setting")
    agent_summary_enabled: bool = Field(True, description="the Agent Summary page (AS-1) for every "
                                        "user: off hides it from the sidebar and its URL answers 404")


class StorageVolumeConfig(Section):
    """One storage volume (``[[storage.volumes]]``)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    backend: Literal["vfs", "xfs"] = "vfs"
    path: Path


class StorageConfig(Section):
    host: str = "127.0.0.1"
    client_port: int = Field(6021, ge=1, le=65535)
    manager_port: int = Field(6022, ge=1, le=65535)
    proxy_name: str = Field("local", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
                            description="host names are <proxy_name>:<volume name>")
    volumes: list[StorageVolumeConfig] = Field(
        default_factory=list, description="empty = one vfs volume 'volume1' under "
        "data_dir/volumes/volume1")
    token_ttl: int = Field(1800, ge=1, description="seconds a file-transfer token stays valid")
    manager_url: str = Field("", description="where the manager reaches the manager-facing API; "
                             "empty = http://{host}:{manager_port}, 127.0.0.1 for a wildcard host")
    client_url: str = Field("", description="the client-facing API's URL handed to browsers and the "
                            "CLI; empty = http://{host}:{client_port}, 127.0.0.1 for a wildcard host")
    default_host: str = Field("", description="the host new folders go to; empty = the first volume")
    file_owner: str = Field("1000:1000", pattern=r"^(\d+:\d+)?$",
                            description="uid:gid given to folders and the files written into them "
                            "(the containers' default user); empty = the proxy's own user")
    usage_ttl: float = Field(60.0, ge=0, description="seconds a folder's cached size is trusted; writes "
                             "through the proxy refresh it at once, writes from sessions show after this")

    @property
    def manager_api_url(self) -> str:
        return (self.manager_url or http_url(self.host, self.manager_port)).rstrip("/")

    @property
    def client_api_url(self) -> str:
        return (self.client_url or http_url(self.host, self.client_port)).rstrip("/")

    @property
    def default_volume_host(self) -> str:
        if self.default_host:
            return self.default_host
        first = self.volumes[0].name if self.volumes else "volume1"
        return f"{self.proxy_name}:{first}"


class AppProxyConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(10200, ge=1, le=65535)
    url: str = Field("", description="where the manager reaches the app-proxy's API; "
                     "empty = http://{host}:{port}, 127.0.0.1 for a wildcard host")
    advertise_host: str = Field("", description="host name in the app URLs handed to browsers; "
                                "empty = host (127.0.0.1 when host is 0.0.0.0)")
    port_range: str = Field("", pattern=r"^(\d+-\d+)?$",
                            description="ports for app circuits, e.g. 10205-10300; empty = the OS "
                            "picks a free port per circuit")
    inference_port: int = Field(10201, ge=1, le=65535, description="model services' endpoints: "
                                "http://{advertise_host}:{inference_port}/<service name>/")
    open_token_ttl: int = Field(60, ge=5, description="seconds an app's opening link stays valid")
    tcp_token_ttl: int = Field(86400, ge=60, description="seconds a TCP tunnel token stays valid")

    @property
    def api_url(self) -> str:
        return (self.url or http_url(self.host, self.port)).rstrip("/")

    @property
    def public_host(self) -> str:
        return self.advertise_host or reachable_host(self.host)


class SimulatedDeviceConfig(Section):
    """A simulated accelerator for tests (``[[agent.simulated_devices]]``)."""

    slot: str = Field(description="slot it provides, e.g. cuda.device (whole) or cuda.shares")
    count: int = Field(1, ge=0, description="number of devices")
    memory: str = Field("0", description="memory per device, e.g. 16g")
    shares_per_device: int = Field(0, ge=0, description="for a *.shares slot: shares per device "
                                   "(0 = 1 share per device)")
    env: str = Field("", description="variable listing the allocated device ids; empty = "
                     "CUDA_VISIBLE_DEVICES for cuda.*, else <PREFIX>_VISIBLE_DEVICES")
    model: str = "Simulated device"


class AgentConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(6001, ge=1, le=65535)
    manager_url: str = "http://127.0.0.1:8091"
    id: str = ""
    region: str = "local"
    resource_group: str = Field("default", min_length=1, description="the resource group of this "
                                "node, sent with every heartbeat; the documented default is 'default'")
    # --- kernels (see docs/agent-rpc.md) ---
    docker_host: str = Field("", description="Docker Engine API endpoint; empty = $DOCKER_HOST, "
                             "then unix:///run/podman/podman.sock, then /var/run/docker.sock")
    advertise_url: str = Field("", description="RPC base URL reported to the manager; "
                               "empty = http://{host}:{port}, 127.0.0.1 for a wildcard host")
    container_host: str = Field("127.0.0.1", description="address where published container "
                                "ports are reachable (reported as kernel_host)")
    heartbeat_interval: float = Field(3.0, gt=0)
    poll_interval: float = Field(1.0, gt=0, description="container state polling period")
    stats_interval: float = Field(10.0, gt=0, description="kernel stats sampling period")
    slots: dict[str, str | int | float] = Field(
        default_factory=dict, description='capacity overrides, e.g. {cpu = "4", mem = "8g"}')
    cpu_set: list[int] = Field(default_factory=list, description="core ids this agent pins "
                               "kernels to; empty = every core the process may use")
    port_range: str = Field("", description="host ports for published container ports, e.g. "
                            "30000-31000; empty = the engine picks free ports")
    container_ulimits: dict[str, int] = Field(
        default_factory=dict, description="ulimits set on every container (soft == hard); "
        "empty = from the host's hard limits (nofile <= 1048576, nproc <= 32768)")
    prepare_timeout: float = Field(600.0, gt=0, description="seconds a kernel may stay preparing")
    stop_timeout: float = Field(5.0, ge=0, description="grace seconds before a kill on destroy")
    log_retention: float = Field(604800.0, ge=0, description="seconds logs of dead kernels are kept")
    cuda_shares_per_device: int = Field(0, ge=0, description="0 = whole GPUs (cuda.device); "
                                        "N > 0 = fractional GPUs (cuda.shares, N per GPU)")
    cuda_injection: Literal["auto", "device-requests", "cdi"] = "auto"
    simulated_devices: list[SimulatedDeviceConfig] = Field(default_factory=list)

    @property
    def rpc_url(self) -> str:
        """The RPC base URL reported to the manager as the agent's ``addr``."""
        return (self.advertise_url or http_url(self.host, self.port)).rstrip("/")


class LoggingConfig(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class WorkbayConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WORKBAY_", env_nested_delimiter="__",
                                      extra="forbid")

    data_dir: Path = Path("./var")
    db: DBConfig = DBConfig()
    redis: RedisConfig = RedisConfig()
    secrets: Secrets = Secrets()
    manager: ManagerConfig = ManagerConfig()
    webserver: WebserverConfig = WebserverConfig()
    storage: StorageConfig = StorageConfig()
    appproxy: AppProxyConfig = AppProxyConfig()
    agent: AgentConfig = AgentConfig()
    logging: LoggingConfig = LoggingConfig()

    _toml_data: dict[str, Any] = {}

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings,
                                   dotenv_settings, file_secret_settings
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        # init (CLI flags) > environment > TOML file
        return (init_settings, env_settings, _TomlSource(settings_cls, cls._toml_data))

    @property
    def db_url(self) -> str:
        return self.db.url or f"sqlite+aiosqlite:///{(self.data_dir / 'workbay.db').resolve()}"


class _TomlSource(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self.data = data

    def get_field_value(self, field, field_name):  # pragma: no cover - unused
        return self.data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.data)


class ConfigError(Exception):
    """Raised with a readable, multi-line explanation of what is wrong."""


def load_config(path: Path | None = None, **overrides: Any) -> WorkbayConfig:
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text())
        except FileNotFoundError as e:
            raise ConfigError(f"config file not found: {path}") from e
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: invalid TOML: {e}") from e
    # The class attribute carries the file's data to the TOML source for this one construction.
    WorkbayConfig._toml_data = data
    try:
        unknown = unknown_environment_sections(os.environ)
        if unknown:
            raise ConfigError("invalid configuration in the environment:\n" + "\n".join(
                f"  {name}: no configuration section {section!r} (sections: {', '.join(_SECTIONS)})"
                for name, section in unknown))
        return WorkbayConfig(**overrides)
    except ValidationError as e:
        lines = [f"invalid configuration{f' in {path}' if path else ''}:"]
        for err in e.errors():
            loc = ".".join(str(p) for p in err["loc"])
            line = f"  {loc}: {err['msg']}"
            if err["type"] == "extra_forbidden":
                line += f" (unknown key{_known_keys(err['loc'])})"
            env_name = _environment_name(err["loc"], os.environ)
            if env_name:
                line += f" (from the environment variable {env_name})"
            lines.append(line)
        raise ConfigError("\n".join(lines)) from e
    finally:
        WorkbayConfig._toml_data = {}


ENV_PREFIX = "WORKBAY_"
_SECTIONS = tuple(name for name, f in WorkbayConfig.model_fields.items()
                  if isinstance(f.annotation, type) and issubclass(f.annotation, BaseModel))


def unknown_environment_sections(environ: Mapping[str, str]) -> list[tuple[str, str]]:
    """``(variable, section)`` of every ``WORKBAY_<section>__<key>`` whose section does not exist
    (pydantic-settings would ignore it: a typo would silently configure nothing)."""
    out = []
    for name in sorted(environ):
        if not name.upper().startswith(ENV_PREFIX) or "__" not in name:
            continue
        section = name[len(ENV_PREFIX):].split("__", 1)[0].lower()
        if section not in _SECTIONS:
            out.append((name, section))
    return out


def _environment_name(loc: tuple[int | str, ...], environ: Mapping[str, str]) -> str | None:
    """The environment variable that set the value at ``loc``, if one did."""
    wanted = (ENV_PREFIX + "__".join(str(p) for p in loc)).upper()
    return next((name for name in environ if name.upper() == wanted), None)


def _known_keys(loc: tuple[int | str, ...]) -> str:
    model: type[BaseModel] = WorkbayConfig
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            return ""
        model = field.annotation
    return f"; known keys: {', '.join(model.model_fields)}"
