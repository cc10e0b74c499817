"""Serving components: one process per component in a cluster, or all of them in one (``workbay up``).

Each component is its own ASGI app on its own port; in lite they share one event loop and talk to
each other over loopback HTTP exactly as in a cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from workbay.common.config import WorkbayConfig, load_config
from workbay.common.datadir import secure_data_dir
from workbay.common.logging import install_redaction
from workbay.common.secrets import ensure_secrets

log = logging.getLogger(__name__)
COMPONENTS = ("manager", "webserver", "storage-proxy", "app-proxy", "agent")
LITE_PORT_RANGE = "30000-31999"  # host ports for published container ports, split among agents
# Port offsets from --port-base (webserver at the base).
OFFSETS = {"webserver": 0, "manager": 1, "storage-client": 2, "storage-manager": 3, "app-proxy": 4,
           "agent": 5, "app-proxy-inference": 9}


def lite_config(data_dir: Path, port_base: int = 8090, config_path: Path | None = None
                ) -> WorkbayConfig:
    """The embedded default: ports derived from the base, SQLite under the data dir."""
    manager_url = f"http://127.0.0.1:{port_base + OFFSETS['manager']}"
    config = load_config(
        config_path,
        data_dir=data_dir,
        manager={"port": port_base + OFFSETS["manager"]},
        webserver={"port": port_base + OFFSETS["webserver"], "manager_url": manager_url},
        storage={"client_port": port_base + OFFSETS["storage-client"],
                 "manager_port": port_base + OFFSETS["storage-manager"]},
        appproxy={"port": port_base + OFFSETS["app-proxy"],
                  "inference_port": port_base + OFFSETS["app-proxy-inference"]},
        agent={"port": port_base + OFFSETS["agent"], "manager_url": manager_url},
    )
    if not config.agent.port_range:
        # The engine picking host ports lets containers started at the same moment collide.
        config = config.model_copy(update={"agent": config.agent.model_copy(update={"port_range": LITE_PORT_RANGE})})
    secure_data_dir(config.data_dir)  # 0700, and an older installation's files made private
    return ensure_secrets(config)


def split_cores(cores: list[int], parts: int) -> list[list[int]]:
    """Disjoint, near-equal shares of the cores (every part gets at least one; shares wrap when
    there are more agents than cores)."""
    if parts <= len(cores):
        size, extra = divmod(len(cores), parts)
        out, start = [], 0
        for i in range(parts):
            end = start + size + (1 if i < extra else 0)
            out.append(cores[start:end])
            start = end
        return out
    return [[cores[i % len(cores)]] for i in range(parts)]


def split_port_range(text: str, parts: int) -> list[str]:
    """Disjoint slices of "LOW-HIGH" (empty stays empty: the engine picks)."""
    if not text:
        return [""] * parts
    low, high = (int(x) for x in text.split("-", 1))
    size = (high - low + 1) // parts
    if size < 1:
        raise ValueError(f"port range {text} is too small for {parts} agents")
    return [f"{low + i * size}-{low + (i + 1) * size - 1}" for i in range(parts)]


def agent_ports(config: WorkbayConfig, agents: int) -> list[int]:
    """The RPC ports of N agents: from the agent port up, skipping the other components' ports
    (the inference listener sits at base + 9, among the ports of a 5th agent and beyond)."""
    taken = {config.webserver.port, config.manager.port, config.storage.client_port,
             config.storage.manager_port, config.appproxy.port, config.appproxy.inference_port}
    ports: list[int] = []
    port = config.agent.port
    while len(ports) < agents:
        if port not in taken:
            ports.append(port)
        port += 1
    return ports


def agent_configs(config: WorkbayConfig, agents: int) -> list[WorkbayConfig]:
    """``workbay up --agents N``: N agents that split this machine's cores and memory, on ports
    after the base agent port, with ids ``<id or host>-1 … -N``."""
    if agents <= 1:
        return [config]
    import os
    import platform

    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    base_id = config.agent.id or platform.node()
    out = []
    ranges = split_port_range(config.agent.port_range, agents)
    ports = agent_ports(config, agents)
    for i, share in enumerate(split_cores(cores, agents)):
        slots = {"cpu": str(len(share)), "mem": str(mem // agents), **config.agent.slots}
        agent = config.agent.model_copy(update={
            "id": f"{base_id}-{i + 1}", "port": ports[i], "cpu_set": share, "slots": slots,
            "port_range": ranges[i]})
        out.append(config.model_copy(update={"agent": agent}))
    return out


def _apps(config: WorkbayConfig, component: str, demo: bool, agents: int = 1) -> list[tuple[str, Any, str, int]]:
    """(label, app, host, port) for one component."""
    if component == "manager":
        from workbay.manager.app import create_app

        return [("manager", create_app(config, demo=demo), config.manager.host, config.manager.port)]
    if component == "webserver":
        from workbay.web.app import create_app

        return [("webserver", create_app(config), config.webserver.host, config.webserver.port)]
    if component == "storage-proxy":
        from workbay.storage.app import create_client_app, create_manager_app

        return [("storage-proxy (client)", create_client_app(config), config.storage.host,
                 config.storage.client_port),
                ("storage-proxy (manager)", create_manager_app(config), config.storage.host,
                 config.storage.manager_port)]
    if component == "app-proxy":
        from workbay.appproxy.app import create_app

        return [("app-proxy", create_app(config), config.appproxy.host, config.appproxy.port)]
    if component == "agent":
        from workbay.agent.app import create_app

        return [(f"agent {c.agent.id or ''}".strip(), create_app(c), c.agent.host, c.agent.port)
                for c in agent_configs(config, agents)]
    raise ValueError(f"unknown component: {component}")


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to us (several share one process)."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield

    def install_signal_handlers(self) -> None:  # uvicorn < 0.29
        pass


async def serve(config: WorkbayConfig, components: tuple[str, ...] | list[str], demo: bool = False,
                ready: Callable[[], None] | None = None, stop: asyncio.Event | None = None,
                agents: int = 1) -> None:
    """Serve the given components until ``stop`` is set (or SIGINT/SIGTERM in the main thread).

    The manager starts first (migrations, bootstrap); the others start once it answers.
    """
    install_redaction()  # every component's log lines, uvicorn's and httpx's included
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
    ordered = sorted(components, key=lambda c: 0 if c == "manager" else 1)
    servers: list[_Server] = []
    tasks: list[asyncio.Task] = []
    try:
        for component in ordered:
            for label, app, host, port in _apps(config, component, demo, agents):
                # proxy_headers off: each component believes X-Forwarded-* only from the
                # proxies its own configuration names (manager/webserver.trusted_proxies).
                server = _Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                                lifespan="on", proxy_headers=False))
                servers.append(server)
                tasks.append(asyncio.create_task(server.serve(), name=label))
                while not server.started:
                    if tasks[-1].done():
                        tasks[-1].result()  # re-raises why it failed to start
                        raise RuntimeError(f"{label} stopped while starting")
                    await asyncio.sleep(0.05)
                log.info("%s listening on http://%s:%d", label, host, port)
        if ready:
            ready()
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for t in done:
            if t is not stopper and t.exception():
                raise t.exception()
    finally:
        for server in servers:
            server.should_exit = True
        await asyncio.gather(*tasks, return_exceptions=True)


@dataclass
class LiteHandle:
    """A whole Workbay running in a background thread (tests, benchmarks)."""

    config: WorkbayConfig
    thread: threading.Thread
    loop: asyncio.AbstractEventLoop
    stop_event: asyncio.Event
    error: list[BaseException]

    @property
    def webserver_url(self) -> str:
        return f"http://127.0.0.1:{self.config.webserver.port}"

    @property
    def manager_url(self) -> str:
        return f"http://127.0.0.1:{self.config.manager.port}"

    def stop(self, timeout: float = 30) -> None:
        self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(timeout)


def start_in_thread(data_dir: Path, port_base: int, demo: bool = False,
                    components: tuple[str, ...] = COMPONENTS, timeout: float = 60,
                    config: WorkbayConfig | None = None, agents: int = 1) -> LiteHandle:
    config = config or lite_config(Path(data_dir), port_base)
    started = threading.Event()
    holder: dict[str, Any] = {}
    errors: list[BaseException] = []

    def run() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        stop_event = asyncio.Event()
        holder["loop"], holder["stop"] = loop, stop_event
        try:
            loop.run_until_complete(serve(config, components, demo=demo, ready=started.set,
                                          stop=stop_event, agents=agents))
        except BaseException as e:  # reported to the caller below
            errors.append(e)
            started.set()
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="workbay-lite", daemon=True)
    thread.start()
    if not started.wait(timeout):
        raise TimeoutError("Workbay did not start in time")
    if errors:
        raise RuntimeError("Workbay failed to start") from errors[0]
    return LiteHandle(config, thread, holder["loop"], holder["stop"], errors)
