"""The web terminal (AP-2) where an image has no ttyd: xterm.js in the browser, attached over a
WebSocket to ``tmux new-session -A -s main`` in the container.

Every connection gets its own pty running a tmux client of the same tmux session, so closing the
window loses nothing and a reconnect (or a second window) shows the same screen.  Runs with the
image's Python, using tornado and terminado (both come with Jupyter); the app-proxy serves the
xterm.js assets under /__workbay/assets/.

Protocol (terminado's): client → server ``["stdin", text]``, ``["set_size", rows, cols]``;
server → client ``["stdout", text]``, ``["setup", {}]``, ``["disconnect", 1]``."""

from __future__ import annotations

import argparse
import shutil

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Terminal</title>
<link rel="stylesheet" href="/__workbay/assets/xterm.css">
<style>html,body{height:100%;margin:0;background:#1e1e1e}#term{position:absolute;inset:4px}</style>
</head><body><div id="term"></div>
<script src="/__workbay/assets/xterm.js"></script>
<script>
const term = new Terminal({cursorBlink: true, fontSize: 14, scrollback: 5000,
  fontFamily: 'Menlo, "DejaVu Sans Mono", "Noto Sans Mono", monospace'});
term.open(document.getElementById("term"));
const el = document.getElementById("term");
function cellSize() {
  try {  // xterm's own measurement when it exposes it
    const c = term._core._renderService.dimensions.css.cell;
    if (c.width && c.height) return c;
  } catch (e) {}
  const probe = document.createElement("span");
  probe.style.cssText = "position:absolute;visibility:hidden;white-space:pre;font-size:14px;" +
    "font-family:" + term.options.fontFamily;
  probe.textContent = "WWWWWWWWWW";
  document.body.appendChild(probe);
  const r = probe.getBoundingClientRect();
  probe.remove();
  return {width: r.width / 10, height: Math.ceil(r.height)};
}
function fit() {
  const cell = cellSize();
  if (!cell.width || !cell.height) return;
  const cols = Math.max(20, Math.floor(el.clientWidth / cell.width));
  const rows = Math.max(5, Math.floor(el.clientHeight / cell.height));
  if (cols !== term.cols || rows !== term.rows) term.resize(cols, rows);
}
let ws, retry = 0;
function connect() {
  ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/websocket");
  ws.onopen = () => { retry = 0; fit(); ws.send(JSON.stringify(["set_size", term.rows, term.cols])); };
  ws.onmessage = (ev) => { const m = JSON.parse(ev.data); if (m[0] === "stdout") term.write(m[1]); };
  ws.onclose = () => { term.write("\\r\\n[disconnected; reconnecting…]\\r\\n");
    setTimeout(connect, Math.min(5000, 500 * ++retry)); };
}
term.onData((d) => ws && ws.readyState === 1 && ws.send(JSON.stringify(["stdin", d])));
term.onResize(({rows, cols}) => ws && ws.readyState === 1 && ws.send(JSON.stringify(["set_size", rows, cols])));
window.addEventListener("resize", fit);
connect();
term.focus();
</script></body></html>
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--address", default="0.0.0.0",
                        help="where to listen (127.0.0.1 behind the runner's app gate)")
    parser.add_argument("--session", default="main", help="the tmux session every window attaches to")
    args = parser.parse_args()

    import tornado.ioloop
    import tornado.web
    from terminado import TermSocket, UniqueTermManager

    shell = ["tmux", "new-session", "-A", "-s", args.session] if shutil.which("tmux") else ["bash", "-l"]
    manager = UniqueTermManager(shell_command=shell, max_terminals=64)

    class TerminalPageHandler(tornado.web.RequestHandler):
        def get(self) -> None:
            self.set_header("Content-Type", "text/html; charset=utf-8")
            self.set_header("Cache-Control", "no-store")
            self.write(PAGE)

    class Socket(TermSocket):
        def check_origin(self, origin: str) -> bool:
            return True  # the app gate and the app-proxy in front decide who may connect

    app = tornado.web.Application([
        (r"/", TerminalPageHandler),
        (r"/websocket", Socket, {"term_manager": manager}),
    ])
    app.listen(args.port, address=args.address)
    tornado.ioloop.IOLoop.current().start()


if __name__ == "__main__":
    main()
