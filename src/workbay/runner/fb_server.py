"""The File Browser's HTTP side: the tornado handlers of the JSON API and the page (see
``filebrowser.py`` for the API), and ``main``.

The page is the static template ``filebrowser.html`` beside this file (self-contained: inline CSS
and JS, no placeholders), read once when the app starts; a missing template stops the start with
an error naming its path.  tornado (which comes with Jupyter) is imported only inside
``make_app`` and ``main`` so the host can import this module without it.  Python 3.9 compatible."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import stat
from typing import Any, Dict, List, Optional

from .fb_paths import (
    CHUNK,
    HOME,
    MAX_UPLOAD_BYTES,
    TMP_PREFIX,
    Located,
    PathError,
    content_disposition,
    fs_error,
    iter_zip,
    list_folder,
    locate,
    op_delete,
    op_mkdir,
    op_move,
    op_rename,
    op_touch,
    open_file,
    relative,
    root_allowed,
    split_path,
)

TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "filebrowser.html")
# Inline scripts and styles only (the page is self-contained); nothing from elsewhere.
PAGE_CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
            "img-src 'self' data:; connect-src 'self'; form-action 'self'; "
            "frame-ancestors 'self'; base-uri 'none'")


def load_page(path: str = TEMPLATE) -> str:
    """The page's HTML from its template file."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise RuntimeError(f"The File Browser page {path} cannot be read: {e.strerror or e}") from e


def make_app(root: str, page: Optional[str] = None) -> Any:
    """The tornado application serving ``root`` (tornado is imported here, not at module level);
    ``page`` defaults to the template read now, once."""
    import tornado.ioloop
    import tornado.iostream
    import tornado.web

    page = load_page() if page is None else page
    root_real = os.path.realpath(root)
    root_label = os.path.basename(root_real) or root_real

    def api(method):
        """JSON errors for PathError and OSError; the header check for mutating requests."""
        async def wrapper(self, *args, **kwargs):
            try:
                if self.request.method not in ("GET", "HEAD"):
                    self.check_csrf()
                result = method(self, *args, **kwargs)
                if hasattr(result, "__await__"):
                    result = await result
                if result is not None and not self._finished:
                    self.send_json(result)
            except PathError as e:
                self.send_json({"error": e.message}, e.status)
            except OSError as e:
                err = fs_error(e)
                self.send_json({"error": err.message}, err.status)
        return wrapper

    class BaseHandler(tornado.web.RequestHandler):
        def set_default_headers(self) -> None:
            self.set_header("Cache-Control", "no-store")
            self.set_header("X-Content-Type-Options", "nosniff")
            self.set_header("Referrer-Policy", "same-origin")

        def check_csrf(self) -> None:
            if not self.request.headers.get("X-Requested-With"):
                raise PathError("Missing X-Requested-With header (requests must come from the page).", 403)

        def send_json(self, data: Any, status: int = 200) -> None:
            if self._headers_written:  # a download broke midway: end the connection
                self.abort()
                return
            self.set_status(status)
            self.set_header("Content-Type", "application/json; charset=utf-8")
            self.finish(json.dumps(data))

        def json_body(self) -> Dict[str, Any]:
            try:
                body = json.loads(self.request.body or b"{}")
            except ValueError:
                raise PathError("The request body must be JSON.") from None
            if not isinstance(body, dict):
                raise PathError("The request body must be a JSON object.")
            return body

        def abort(self) -> None:
            stream = getattr(self.request.connection, "stream", None)
            if stream is not None:
                stream.close()
            self._finished = True

        def write_error(self, status_code: int, **kwargs: Any) -> None:
            self.set_header("Content-Type", "application/json; charset=utf-8")
            self.finish(json.dumps({"error": self._reason}))

    class PageHandler(BaseHandler):
        def get(self) -> None:
            self.set_header("Content-Type", "text/html; charset=utf-8")
            self.set_header("Content-Security-Policy", PAGE_CSP)
            self.finish(page)

    class FaviconHandler(BaseHandler):
        def get(self) -> None:
            self.set_status(204)
            self.finish()

    class ListDirHandler(BaseHandler):
        @api
        def get(self) -> Dict[str, Any]:
            rel = self.get_query_argument("path", "")
            listed = list_folder(root_real, rel)
            return {"path": "/".join(split_path(rel)), "root": root_label,
                    "readonly": listed["readonly"], "writable": listed["writable"],
                    "items": listed["items"]}

    class MkdirHandler(BaseHandler):
        @api
        def post(self) -> Dict[str, Any]:
            body = self.json_body()
            full = op_mkdir(root_real, body.get("path"), bool(body.get("parents")))
            return {"path": relative(root_real, full)}

    class TouchHandler(BaseHandler):
        @api
        def post(self) -> Dict[str, Any]:
            return {"path": relative(root_real, op_touch(root_real, self.json_body().get("path")))}

    class RenameHandler(BaseHandler):
        @api
        def post(self) -> Dict[str, Any]:
            body = self.json_body()
            return {"path": relative(root_real, op_rename(root_real, body.get("path"), body.get("name")))}

    class MoveHandler(BaseHandler):
        @api
        async def post(self) -> Dict[str, Any]:
            body = self.json_body()
            paths = body.get("paths", [body["path"]] if "path" in body else [])
            loop = tornado.ioloop.IOLoop.current()
            moved = await loop.run_in_executor(None, op_move, root_real, paths, body.get("to", ""))
            return {"paths": [relative(root_real, p) for p in moved]}

    class DeleteHandler(BaseHandler):
        @api
        async def post(self) -> Dict[str, Any]:
            body = self.json_body()
            paths = body.get("paths", [body["path"]] if "path" in body else [])
            loop = tornado.ioloop.IOLoop.current()
            return {"deleted": await loop.run_in_executor(None, op_delete, root_real, paths)}

    class DownloadHandler(BaseHandler):
        @api
        async def get(self) -> None:
            rels = self.get_query_arguments("path") or [""]
            fulls = []
            for r in rels:
                with locate(root_real, r) as loc:
                    st = loc.lstat()
                    if st is None:
                        raise PathError(f"/{r}: No such file or directory", 404)
                    if len(rels) == 1 and not stat.S_ISDIR(st.st_mode):
                        # one file: served from the descriptor opened here (regular files only)
                        fd, fst = open_file(loc)
                        await self._file(fd, fst, loc.name)
                        return
                    fulls.append(loc.full)
            await self._zip(rels, fulls)

        async def _file(self, fd: int, st: os.stat_result, name: str) -> None:
            f = os.fdopen(fd, "rb")
            with f:
                self.set_header("Content-Type", "application/octet-stream")
                self.set_header("Content-Disposition", content_disposition(name))
                self.set_header("Content-Length", str(st.st_size))
                while True:
                    block = f.read(CHUNK)
                    if not block:
                        break
                    self.write(block)
                    try:
                        await self.flush()
                    except tornado.iostream.StreamClosedError:
                        return
            self.finish()

        async def _zip(self, rels: List[str], fulls: List[str]) -> None:
            if len(fulls) == 1:
                name = os.path.basename(fulls[0]) if fulls[0] != root_real else root_label
            else:
                parent = os.path.dirname(fulls[0])
                name = os.path.basename(parent) if parent != root_real else root_label
            sources = [(r, os.path.basename(f) if f != root_real else root_label) for r, f in zip(rels, fulls)]
            self.set_header("Content-Type", "application/zip")
            self.set_header("Content-Disposition", content_disposition(name + ".zip"))
            gen = iter_zip(root_real, sources)
            loop = tornado.ioloop.IOLoop.current()
            try:
                while True:
                    block = await loop.run_in_executor(None, next, gen, None)
                    if block is None:
                        break
                    self.write(block)
                    await self.flush()
            except tornado.iostream.StreamClosedError:
                return
            finally:
                gen.close()
            self.finish()

    @tornado.web.stream_request_body
    class UploadHandler(BaseHandler):
        def initialize(self) -> None:
            self.fd: Optional[int] = None
            self.tmp: Optional[str] = None
            self.loc: Optional[Located] = None
            self.target: Optional[str] = None
            self.error: Optional[PathError] = None
            self.received = 0

        def prepare(self) -> None:
            self.request.connection.set_max_body_size(MAX_UPLOAD_BYTES)
            self.request.connection.set_body_timeout(24 * 3600)
            # Errors are answered once the body is read: a reply before that would reach the
            # browser (through the proxy) as a broken connection rather than as the message.
            try:
                self.check_csrf()
                rel = self.get_query_argument("path", "")
                overwrite = self.get_query_argument("overwrite", "0") in ("1", "true", "yes")
                parts = split_path(rel)
                if not parts:
                    raise PathError("A file name is required.")
                # the parents walked by descriptor (missing ones made); the file goes to a
                # temporary name in the parent's descriptor, renamed over the target when
                # complete (a link there is replaced, never written through)
                self.loc = locate(root_real, parts, follow=False, create=True)
                st = self.loc.lstat()
                if st is not None:
                    if stat.S_ISDIR(st.st_mode):
                        raise PathError(f"{parts[-1]}: Is a folder", 409)
                    if not overwrite:
                        raise PathError(f"{parts[-1]}: File exists", 409)
                self.target = self.loc.full
                self.tmp = TMP_PREFIX + secrets.token_hex(8)
                self.fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                                  0o666, dir_fd=self.loc.dir_fd)
            except PathError as e:
                self.error = e
            except OSError as e:
                self.error = fs_error(e)

        def data_received(self, chunk: bytes) -> None:
            if self.fd is None:
                return
            view = memoryview(chunk)
            try:
                while view:
                    n = os.write(self.fd, view)
                    view = view[n:]
                self.received += len(chunk)
            except OSError as e:
                self.error = fs_error(e)
                self._cleanup()

        def _cleanup(self) -> None:
            if self.fd is not None:
                os.close(self.fd)
                self.fd = None
            if self.tmp is not None and self.loc is not None:
                try:
                    os.unlink(self.tmp, dir_fd=self.loc.dir_fd)
                except OSError:
                    pass
            self.tmp = None
            if self.loc is not None:
                self.loc.close()
                self.loc = None

        def put(self) -> None:
            if self.error is not None:
                self._cleanup()
                return self.send_json({"error": self.error.message}, self.error.status)
            try:
                os.close(self.fd)
                self.fd = None
                os.rename(self.tmp, self.loc.name, src_dir_fd=self.loc.dir_fd, dst_dir_fd=self.loc.dir_fd)
                self.tmp = None
            except OSError as e:
                self._cleanup()
                err = fs_error(e)
                return self.send_json({"error": err.message}, err.status)
            self._cleanup()
            self.send_json({"path": relative(root_real, self.target), "size": self.received}, 201)

        post = put

        def on_connection_close(self) -> None:
            self._cleanup()

        def on_finish(self) -> None:
            self._cleanup()

    return tornado.web.Application([
        (r"/", PageHandler),
        (r"/favicon\.ico", FaviconHandler),
        (r"/api/list", ListDirHandler),
        (r"/api/upload", UploadHandler),
        (r"/api/mkdir", MkdirHandler),
        (r"/api/touch", TouchHandler),
        (r"/api/rename", RenameHandler),
        (r"/api/move", MoveHandler),
        (r"/api/delete", DeleteHandler),
        (r"/api/download", DownloadHandler),
    ])


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description="Workbay File Browser")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--root", default=HOME)
    parser.add_argument("--home", default=HOME, help="the root must be inside this folder")
    parser.add_argument("--address", default="0.0.0.0")
    args = parser.parse_args(argv)
    root = root_allowed(args.root, args.home)

    import tornado.httpserver
    import tornado.ioloop

    server = tornado.httpserver.HTTPServer(make_app(root), max_body_size=8 << 20,
                                           max_buffer_size=16 << 20, idle_connection_timeout=3600)
    server.listen(args.port, address=args.address)
    print(f"File Browser for {root} on {args.address}:{args.port}", flush=True)
    tornado.ioloop.IOLoop.current().start()


if __name__ == "__main__":
    main()
