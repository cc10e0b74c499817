"""Moving entries of a folder into another directory of the same folder (VF-4), decided without I/O:
which paths a typed destination names, and which moves are refused before anything is touched.

The explorer's route lists the destination, asks ``plan_moves`` what to do, and only then calls the
manager's ``move-file`` once per entry, so a refused request changes nothing."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

NAME_MAX = 255  # bytes of one path component, as the storage-proxy counts them


class MoveRefused(ValueError):
    """``kind``: ``destination`` (not a path inside the folder), ``already-there`` (the entry is in
    that directory already), ``into-itself`` (a directory into itself or below), ``exists`` (the
    destination holds an entry of that name); ``names``: the entries concerned."""

    def __init__(self, kind: str, names: Iterable[str] = ()) -> None:
        self.kind = kind
        self.names = list(names)
        super().__init__(f"{kind}: {', '.join(self.names)}")


@dataclass(frozen=True)
class Move:
    src: str
    dst: str

    @property
    def name(self) -> str:
        return self.src.rsplit("/", 1)[-1]


def destination_path(typed: str) -> str:
    """A typed directory path as a path relative to the folder's root (``""`` is the root; a
    leading ``/`` means the root too).  Refuses ``..``, backslashes, NUL and over-long names."""
    text = typed.strip()
    if "\\" in text or "\x00" in text:
        raise MoveRefused("destination")
    parts = [p for p in text.split("/") if p and p != "."]
    if any(p == ".." or len(p.encode("utf-8", "surrogateescape")) > NAME_MAX for p in parts):
        raise MoveRefused("destination")
    return "/".join(parts)


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else ""


def plan_moves(targets: Iterable[str], destination: str, existing: Iterable[str]) -> list[Move]:
    """The moves that put each target (a path relative to the root) into ``destination``, whose
    current entries are ``existing``.  All-or-nothing: any refusal names every entry it concerns."""
    unique = list(dict.fromkeys(t for t in targets if t))
    if not unique:
        raise MoveRefused("destination")
    inside = [t for t in unique if destination == t or destination.startswith(t + "/")]
    if inside:
        raise MoveRefused("into-itself", [t.rsplit("/", 1)[-1] for t in inside])
    there = [t for t in unique if _parent(t) == destination]
    if there:
        raise MoveRefused("already-there", [t.rsplit("/", 1)[-1] for t in there])
    moves = [Move(t, f"{destination}/{t.rsplit('/', 1)[-1]}" if destination else t.rsplit("/", 1)[-1])
             for t in unique]
    taken = set(existing)
    seen: set[str] = set()
    clashes = []
    for m in moves:
        if m.name in taken or m.name in seen:
            clashes.append(m.name)
        seen.add(m.name)
    if clashes:
        raise MoveRefused("exists", clashes)
    return moves
