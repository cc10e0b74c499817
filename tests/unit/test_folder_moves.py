"""The explorer's move decisions (VF-4): typed destinations and the moves refused before any change."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workbay.web.folder_moves import Move, MoveRefused, destination_path, plan_moves


@pytest.mark.parametrize(("typed", "expected"), [
    ("", ""), ("/", ""), ("  /  ", ""), ("data", "data"), ("/data/raw/", "data/raw"),
    ("data//raw", "data/raw"), ("./data/./raw", "data/raw"), ("한글/폴더", "한글/폴더"),
])
def test_destination_paths_are_relative_to_the_root(typed, expected):
    assert destination_path(typed) == expected


@pytest.mark.parametrize("typed", ["..", "/data/../..", "a\\b", "a\x00b", "x" * 256, "/ok/" + "é" * 128])
def test_destinations_outside_the_folder_or_unnameable_are_refused(typed):
    with pytest.raises(MoveRefused) as refused:
        destination_path(typed)
    assert refused.value.kind == "destination"


def test_entries_move_into_the_destination_keeping_their_names():
    moves = plan_moves(["docs/a.txt", "docs/sub"], "archive/2024", existing=["other.txt"])
    assert moves == [Move("docs/a.txt", "archive/2024/a.txt"), Move("docs/sub", "archive/2024/sub")]
    assert plan_moves(["docs/a.txt"], "", existing=["docs"]) == [Move("docs/a.txt", "a.txt")]
    assert plan_moves(["x", "x"], "d", existing=[]) == [Move("x", "d/x")]  # chosen twice, moved once


def test_a_name_taken_in_the_destination_refuses_every_move():
    with pytest.raises(MoveRefused) as refused:
        plan_moves(["a.txt", "b.txt", "c.txt"], "dest", existing=["b.txt", "c.txt", "z"])
    assert refused.value.kind == "exists" and refused.value.names == ["b.txt", "c.txt"]


def test_a_directory_cannot_move_into_itself_or_below():
    for destination in ("docs", "docs/deeper/still"):
        with pytest.raises(MoveRefused) as refused:
            plan_moves(["docs", "a.txt"], destination, existing=[])
        assert refused.value.kind == "into-itself" and refused.value.names == ["docs"]
    # a sibling whose name starts the same is another directory
    assert plan_moves(["docs"], "docs2", existing=[]) == [Move("docs", "docs2/docs")]


def test_entries_already_in_the_destination_are_refused():
    with pytest.raises(MoveRefused) as refused:
        plan_moves(["data/a.txt", "b.txt"], "data", existing=["a.txt"])
    assert refused.value.kind == "already-there" and refused.value.names == ["a.txt"]
    with pytest.raises(MoveRefused):
        plan_moves([], "data", existing=[])


names = st.text(st.characters(blacklist_characters="/\\\x00", blacklist_categories=("Cs",)),
                min_size=1, max_size=8).filter(lambda n: n not in (".", ".."))


@given(targets=st.lists(st.lists(names, min_size=1, max_size=3).map("/".join), min_size=1, max_size=5),
       destination=st.lists(names, max_size=3).map("/".join), existing=st.lists(names, max_size=5))
def test_a_plan_never_leaves_the_destination_or_overwrites(targets, destination, existing):
    try:
        moves = plan_moves(targets, destination, existing)
    except MoveRefused:
        return
    for m in moves:
        parent = m.dst.rsplit("/", 1)[0] if "/" in m.dst else ""
        assert parent == destination and m.name == m.src.rsplit("/", 1)[-1]
        assert m.name not in existing
        assert not (destination + "/").startswith(m.src + "/")
    assert len({m.dst for m in moves}) == len(moves)
