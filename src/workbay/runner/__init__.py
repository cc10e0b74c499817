"""The in-container runner (stdlib only, Python >= 3.9).

The agent bind-mounts this directory read-only at ``/opt/workbay/runner`` in every kernel container
and starts ``python3 /opt/workbay/runner/entry.py`` as the container's entrypoint (under the
engine's init). Nothing here may import ``workbay`` or third-party packages: inside the container
this package is importable as ``runner``, on the host as ``workbay.runner`` (unit tests), so
modules import each other relatively.
"""
