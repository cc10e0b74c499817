"""Request bodies of the agent's RPC API (docs/agent-rpc.md)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

ID_RE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
HOSTNAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
NETWORK_RE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Mount(Strict):
    source: str = Field(description="absolute host path")
    target: str = Field(description="absolute path in the container")
    read_only: bool = False

    @field_validator("source", "target")
    @classmethod
    def _absolute(cls, v: str) -> str:
        if not v.startswith("/") or "\x00" in v:
            raise ValueError("must be an absolute path")
        return v


class Dotfile(Strict):
    path: str = Field(description="relative to /home/work, or absolute inside it")
    data: str
    perm: str = Field("644", pattern=r"^[0-7]{3,4}$")


class SSHKeypair(Strict):
    private_key: str
    public_key: str


class KernelSpec(Strict):
    kernel_id: str = Field(pattern=ID_RE)
    cluster_role: str = Field("main", pattern=r"^[a-z][a-z0-9-]{0,31}$")
    cluster_idx: int = Field(1, ge=1)
    cluster_hostname: str = ""
    image: str | None = Field(None, description="default: the session's image")
    resource_slots: dict[str, str | int | float]
    resource_opts: dict[str, Any] = Field(default_factory=dict,
                                          description="shmem: bytes or size string")
    environ: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _hostname(self) -> KernelSpec:
        if not self.cluster_hostname:
            self.cluster_hostname = f"{self.cluster_role}{self.cluster_idx}"
        if not HOSTNAME_RE.match(self.cluster_hostname):
            raise ValueError(f"cluster_hostname {self.cluster_hostname!r} is not a valid hostname")
        return self


# A model service's replica (docs/serving.md, "The replica"): what the runner runs in the container.
MAX_COMMAND_ITEMS = 64
MAX_COMMAND_ITEM = 4096
MAX_ACTIONS = 64
MAX_PATH = 4096
MAX_BODY = 1024 * 1024
MODE_RE = r"^[0-7]{3,4}$"
NO_NUL = r"^[^\x00]+$"  # what exec() and open() take
PathText = Annotated[str, StringConstraints(min_length=1, max_length=MAX_PATH, pattern=NO_NUL)]
CommandText = Annotated[str, StringConstraints(min_length=1, max_length=MAX_COMMAND_ITEM, pattern=NO_NUL)]
Command = Annotated[list[CommandText], Field(min_length=1, max_length=MAX_COMMAND_ITEMS)]


class WriteFileArgs(Strict):
    filename: PathText
    body: str = Field("", max_length=MAX_BODY)
    mode: str = Field("644", pattern=MODE_RE)
    append: bool = False


class WriteTempfileArgs(Strict):
    body: str = Field("", max_length=MAX_BODY)
    mode: str = Field("600", pattern=MODE_RE)


class RunCommandArgs(Strict):
    command: Command | CommandText
    cwd: PathText | None = None


class MkdirArgs(Strict):
    path: PathText


class LogArgs(Strict):
    message: str = Field(max_length=MAX_COMMAND_ITEM)
    debug: bool = False


class WriteFile(Strict):
    action: Literal["write_file"]
    args: WriteFileArgs


class WriteTempfile(Strict):
    action: Literal["write_tempfile"]
    args: WriteTempfileArgs


class RunCommand(Strict):
    action: Literal["run_command"]
    args: RunCommandArgs


class Mkdir(Strict):
    action: Literal["mkdir"]
    args: MkdirArgs


class Log(Strict):
    action: Literal["log"]
    args: LogArgs


PreStartAction = Annotated[WriteFile | WriteTempfile | RunCommand | Mkdir | Log, Field(discriminator="action")]


class ModelServiceSpec(Strict):
    """What makes a kernel a model service's replica: the runner runs ``pre_start_actions`` in order,
    then ``start_command`` as the container's main work; ``port`` is where it serves (one of the
    request's ``preopen_ports``, so it is published behind the app gate)."""

    start_command: Command
    port: int = Field(ge=1024, le=65535)
    pre_start_actions: list[PreStartAction] = Field(default_factory=list, max_length=MAX_ACTIONS)
    model_path: PathText | None = None
    definition_name: str | None = Field(None, max_length=256)


class CreateKernels(Strict):
    session_id: str = Field(pattern=ID_RE)
    session_name: str = ""
    session_type: Literal["interactive", "batch", "inference", "system"] = "interactive"
    owner_access_key: str = ""
    owner_user_id: str = ""
    image: str = Field(min_length=1)
    kernels: list[KernelSpec] = Field(min_length=1)
    environ: dict[str, str] = Field(default_factory=dict)
    mounts: list[Mount] = Field(default_factory=list)
    preopen_ports: list[int] = Field(default_factory=list)
    startup_command: str | None = None
    bootstrap_script: str | None = Field(None, description="plain text (not base64)")
    dotfiles: list[Dotfile] = Field(default_factory=list)
    uid: int = Field(1000, ge=0, le=2**31)
    gid: int = Field(1000, ge=0, le=2**31)
    supplementary_gids: list[int] = Field(default_factory=list)
    sudo: bool = False
    batch_timeout: float | None = Field(None, gt=0)
    network: str | None = Field(None, pattern=NETWORK_RE,
                                description="engine network to join (from POST /v1/networks)")
    cluster_mode: Literal["single-node", "multi-node"] = "single-node"
    cluster_size: int | None = Field(None, ge=1, description="default: len(kernels)")
    cluster_hosts: list[str] = Field(default_factory=list,
                                     description="every hostname of the session; default: "
                                                 "those of kernels")
    cluster_ssh_keypair: SSHKeypair | None = None
    authorized_keys: list[Annotated[str, StringConstraints(max_length=16384, pattern=r"^[^\r\n]+$")]] = Field(
        default_factory=list, max_length=16,
        description="public keys the owner registered (ID-13): sshd accepts them for this session")
    thread_count: int | None = Field(None, ge=1, description="OMP/BLAS threads; default: cpu")
    extra_hosts: dict[str, str] = Field(default_factory=dict,
                                        description="hostname -> IP (multi-node clusters)")
    pull_image: bool = Field(True, description="pull the image when it is missing")
    app_secret: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_-]{32,128}$",
        description="the session's app secret: every published port then leads to the runner's "
                    "app gate, which opens only to a connection that first proves it (never "
                    "returned by any API)")
    model_service: ModelServiceSpec | None = Field(
        None, description="a model service's replica (session type inference): the runner runs it as "
                          "the container's main work (docs/serving.md, \"The replica\")")

    @field_validator("preopen_ports")
    @classmethod
    def _ports(cls, v: list[int]) -> list[int]:
        bad = [p for p in v if not 1024 <= p <= 65535]
        if bad:
            raise ValueError(f"ports must be within 1024-65535: {bad}")
        return sorted(set(v))

    @field_validator("environ")
    @classmethod
    def _env(cls, v: dict[str, str]) -> dict[str, str]:
        bad = [k for k in v if not ENV_NAME_RE.match(k)]
        if bad:
            raise ValueError(f"invalid variable names: {bad}")
        return v

    @model_validator(mode="after")
    def _model_service(self) -> CreateKernels:
        if self.model_service is not None:
            if self.session_type != "inference":
                raise ValueError("model_service is for inference sessions only")
            if self.model_service.port not in self.preopen_ports:
                raise ValueError(f"model_service.port {self.model_service.port} must be one of preopen_ports")
        return self

    @model_validator(mode="after")
    def _unique(self) -> CreateKernels:
        ids = [k.kernel_id for k in self.kernels]
        if len(set(ids)) != len(ids):
            raise ValueError("kernel ids must be unique")
        hosts = [k.cluster_hostname for k in self.kernels]
        if len(set(hosts)) != len(hosts):
            raise ValueError("cluster hostnames must be unique")
        for k in self.kernels:
            bad = [n for n in k.environ if not ENV_NAME_RE.match(n)]
            if bad:
                raise ValueError(f"kernel {k.kernel_id}: invalid variable names: {bad}")
        return self


class DestroyKernel(Strict):
    reason: str = "user-requested"
    forced: bool = False


class Execute(Strict):
    mode: Literal["query", "batch", "continue", "input", "complete"] = "query"
    run_id: str = Field("", alias="runId", max_length=128)
    code: str = ""
    options: dict[str, Any] | None = None
    flush_timeout: float = Field(2.0, ge=0, le=60)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class StartServiceRequest(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    port: int | None = Field(None, ge=1, le=65535, description="container port; default: the "
                             "service port declared by the image")
    args: dict[str, Any] = Field(default_factory=dict)
    envs: dict[str, str] = Field(default_factory=dict)


class CreateNetwork(Strict):
    name: str = Field(pattern=NETWORK_RE)
    session_id: str = ""
