"""The compute side of the manager: I/O around the pure scheduler (see README.md)."""
