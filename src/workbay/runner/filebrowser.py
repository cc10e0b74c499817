"""The File Browser app (AP-6, VF-4): a web file manager for one directory of the session
(a mounted storage folder, or the whole home), served inside the container through the app-proxy.

Browse (breadcrumbs, name/size/modified), upload files and whole directories with their structure
(``<input webkitdirectory>`` and drag & drop of folders), download files and folders (zip, streamed),
rename, move, delete, new folder, new empty file.  The page is self-contained (inline CSS and JS).

JSON API, every path relative to the root (``""`` is the root itself):

=========================================  ===================================================
``GET  /api/list?path=P``                  the folder's entries, whether it is writable
``PUT  /api/upload?path=P[&overwrite=1]``  the body is the file (streamed to a temporary file in
                                           the target folder, renamed when complete); missing
                                           parent folders are created
``POST /api/mkdir``   ``{"path", "parents"}``  a new folder
``POST /api/touch``   ``{"path"}``             a new empty file
``POST /api/rename``  ``{"path", "name"}``     rename in place
``POST /api/move``    ``{"paths", "to"}``      move into another folder
``POST /api/delete``  ``{"paths"}``            delete files and folders (recursively)
``GET  /api/download?path=P[&path=Q…]``    one file as is; a folder or several paths as a zip
=========================================  ===================================================

Mutating requests need an ``X-Requested-With`` header (a cross-site page cannot send one without
a CORS preflight, which this app never grants).  Errors answer ``{"error": message}`` with a 4xx
status (``403 Read-only file system`` for read-only mounts).  Every path is confined to the root:
no ``..``, no absolute paths, no NUL, names of at most 255 bytes, symlinks that lead outside the
root are refused.

Runs with the image's Python and tornado (which comes with Jupyter).  ``services.py`` starts it as
``python3 /opt/workbay/runner/filebrowser.py --port N --root DIR --home HOME``; this file only makes
the runner directory importable as a package and runs ``fb_server.main``.  The parts:
``fb_paths.py`` (path confinement and the file operations, pure Python), ``fb_server.py`` (the
tornado handlers), ``filebrowser.html`` (the page)."""

import os
import sys


def _run() -> None:
    sys.dont_write_bytecode = True  # the runner's directory is mounted read-only
    here = os.path.dirname(os.path.abspath(__file__))
    # Import this directory as a package (as entry.py does), never its modules as top-level names.
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    sys.path.insert(0, os.path.dirname(here))
    import importlib

    importlib.import_module(os.path.basename(here) + ".fb_server").main()


if __name__ == "__main__":
    _run()
