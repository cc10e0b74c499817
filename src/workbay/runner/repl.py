"""The persistent Python interpreter of query-mode execution (one per kernel, runs as ``work``).

Started by the runner as ``python3 -u repl.py CTL_OUT_FD``. Control messages (JSON lines) arrive
on stdin, which is then replaced by /dev/null so user code never reads them; replies go to
CTL_OUT_FD. After every execution (and before asking for input) a sync marker is written to
stdout and stderr so the runner knows it has read everything printed so far.
"""

import builtins
import json
import os
import sys
import traceback


def marker(token: str) -> bytes:
    return b"\x00\x1eWB-SYNC:" + token.encode() + b"\x1e\x00"


def main() -> None:
    ctl_out = os.fdopen(int(sys.argv[1]), "w", buffering=1)
    ctl_in = os.fdopen(os.dup(0), "r")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    sys.stdin = open(0, "r", closefd=False)
    # Like an interactive interpreter: the current directory first, not the runner's directory.
    sys.path[0] = ""
    ns = {"__name__": "__main__", "__builtins__": builtins}
    counter = [0]

    def sync(kind: str, **extra) -> str:
        counter[0] += 1
        token = f"{kind}{counter[0]}"
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os.write(1, marker(token))
        os.write(2, marker(token))
        ctl_out.write(json.dumps(dict(extra, op=kind, token=token)) + "\n")
        return token

    def ask(prompt: str, password: bool) -> str:
        if prompt:
            sys.stdout.write(str(prompt))
        sync("input", password=password)
        line = ctl_in.readline()
        if not line:
            raise EOFError
        return json.loads(line).get("text", "")

    def _input(prompt=""):
        return ask(prompt, False)

    def _getpass(prompt="Password: ", stream=None):
        return ask(prompt, True)

    builtins.input = _input
    try:
        import getpass

        getpass.getpass = _getpass
    except Exception:
        pass

    ctl_out.write(json.dumps({"op": "hello", "pid": os.getpid()}) + "\n")
    while True:
        try:
            line = ctl_in.readline()
        except KeyboardInterrupt:  # an interrupt that arrived between two executions
            continue
        if not line:
            return
        msg = json.loads(line)
        op = msg.get("op")
        if op == "exec":
            exit_code = 0
            try:
                code = compile(msg.get("code", ""), "<input>", "exec")
                exec(code, ns)
            except SystemExit as e:
                exit_code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            except BaseException:
                exit_code = 1
                etype, value, tb = sys.exc_info()
                # Drop this file's frame from the traceback.
                tb = tb.tb_next if tb is not None and tb.tb_next is not None else tb
                traceback.print_exception(etype, value, tb)
            sync("done", exit_code=exit_code)
        elif op == "complete":
            try:
                import rlcompleter

                comp = rlcompleter.Completer(ns)
                text = msg.get("text", "")
                items, i = [], 0
                while i < 200:
                    c = comp.complete(text, i)
                    if c is None:
                        break
                    items.append(c)
                    i += 1
            except Exception:
                items = []
            ctl_out.write(json.dumps({"op": "completions", "items": items}) + "\n")


if __name__ == "__main__":
    main()
