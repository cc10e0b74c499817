"""Container entrypoint: ``python3 /opt/workbay/runner/entry.py``."""

import os
import sys

sys.dont_write_bytecode = True  # the runner's directory is mounted read-only
_here = os.path.dirname(os.path.abspath(__file__))
# Import this directory as a package (``runner``), never its modules as top-level names.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]
sys.path.insert(0, os.path.dirname(_here))

if __name__ == "__main__":
    import importlib

    main = importlib.import_module(os.path.basename(_here) + ".main").main
    sys.exit(main())
