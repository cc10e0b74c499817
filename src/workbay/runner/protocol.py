"""Names shared by the agent and the runner (the agent imports this module too)."""

IPC_DIR = "/opt/workbay/ipc"          # in the container; the agent's kernels/<id>/ipc on the host
RUNNER_DIR = "/opt/workbay/runner"
KERNEL_CONFIG = "kernel.json"         # written by the agent before the container starts
SOCKET = "runner.sock"                # the runner's control socket (JSON lines)
READY = "ready.json"                  # written by the runner when preparation has ended
RESULT = "result.json"                # written by a batch kernel's runner before it exits
MAX_MESSAGE = 64 * 2**20              # one request/response line
