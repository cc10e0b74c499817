"""Names shared by the agent and the runner (the agent imports this module too)."""

IPC_DIR = "/opt/workbay/ipc"          # in the container; the agent's kernels/<id>/ipc on the host
RUNNER_DIR = "/opt/workbay/runner"
KERNEL_CONFIG = "kernel.json"         # written by the agent before the container starts
SOCKET = "runner.sock"                # the runner's control socket (JSON lines)
READY = "ready.json"                  # written by the runner when preparation has ended
RESULT = "result.json"                # written by a batch kernel's runner before it exits
MAX_MESSAGE = 64 * 2**20              # one request/response line

# The app gate (runner/gate.py): published ports lead to a gate port per app port, which opens only
# to a connection whose first line is GATE_HELLO + the session's app secret + CRLF (GATE_PROBE: is
# the app listening yet?).  The manager and the app-proxy send it; the secret is in kernel.json.
GATE_HELLO = b"WORKBAY-APP/1 "
GATE_PROBE = b"WORKBAY-PROBE/1 "
GATE_PORT_BASE = 61000                # gate ports: the first free ones from here (below 65536)
# What the gate answers a connection without the secret, whole in one write: the app-proxy tells
# it from an app's own 403 by these exact bytes (a route that now leads to another session).
GATE_FORBIDDEN = (b"HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain; charset=utf-8\r\n"
                  b"content-length: 59\r\nconnection: close\r\n\r\n"
                  b"Forbidden: this port answers only to Workbay's app-proxy.\r\n")


def gate_hello(secret: str) -> bytes:
    return GATE_HELLO + secret.encode("ascii") + b"\r\n"


def gate_probe(secret: str) -> bytes:
    return GATE_PROBE + secret.encode("ascii") + b"\r\n"


def gate_ports(container_ports: "list[int]", taken: "set[int]") -> "list[int]":
    """A gate port for each app port: the first ports from GATE_PORT_BASE that no app declares."""
    out, port = [], GATE_PORT_BASE
    for _ in container_ports:
        while port in taken or port in out:
            port += 1
        out.append(port)
    return out
