"""Output files are replaced whole or not at all (quantumtrader/outputs.py): evaluate's and qt-bench's --json and --plot."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from quantumtrader.outputs import UnwrittenOutput, output_file_problem, replacing, set_aside


def _full_disk_after(first: bytes):
    """A writer that puts ``first`` in the file and then fails as a full disk does."""

    def write(path: Path) -> None:
        path.write_bytes(first)
        raise OSError(errno.ENOSPC, "No space left on device")

    return write


def test_a_write_that_fails_half_way_leaves_the_earlier_file_whole_and_nothing_else(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("earlier")

    with pytest.raises(UnwrittenOutput, match=f"cannot write {target}: No space left on device"):
        with replacing(target) as temporary:
            _full_disk_after(b'{"half": ')(temporary)

    assert target.read_text() == "earlier"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_a_write_that_fails_where_there_was_no_file_leaves_none(tmp_path: Path) -> None:
    target = tmp_path / "new" / "plot.png"

    with pytest.raises(UnwrittenOutput):
        with replacing(target) as temporary:
            assert temporary.suffix == ".png" and temporary.parent == target.parent  # the format is taken from the name
            _full_disk_after(b"\x89PNG")(temporary)

    assert list(target.parent.iterdir()) == []


def test_a_finished_write_replaces_the_file_and_keeps_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("earlier")
    target.chmod(0o640)

    with replacing(target) as temporary:
        temporary.write_text("new")

    assert target.read_text() == "new" and (target.stat().st_mode & 0o777) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_a_new_file_gets_the_mode_a_plain_write_would_give(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    target = tmp_path / "report.json"

    with replacing(target) as temporary:
        temporary.write_text("new")

    assert (target.stat().st_mode & 0o777) == 0o666 & ~umask  # not a temporary file's 0o600


def test_a_linked_output_is_written_through_the_link(tmp_path: Path) -> None:
    real = tmp_path / "results" / "report.json"
    real.parent.mkdir()
    real.write_text("earlier")
    link = tmp_path / "latest.json"
    link.symlink_to(real)

    assert output_file_problem(link) is None
    with replacing(link) as temporary:
        temporary.write_text("new")

    assert link.is_symlink() and real.read_text() == "new"


def test_an_output_that_is_no_regular_file_is_refused(tmp_path: Path) -> None:
    assert "is a directory" in (output_file_problem(tmp_path) or "")
    if Path("/dev/null").exists():
        assert "not a regular file" in (output_file_problem(Path("/dev/null")) or "")


def test_the_new_content_is_synced_to_disk_before_it_replaces_the_file(tmp_path: Path, monkeypatch) -> None:
    """A review (2026-12-05): the paper terminal's book (and every report) was renamed over the old file unsynced, so a
    power cut could leave an empty file where the account was."""
    import quantumtrader.outputs as outputs

    target = tmp_path / "book.json"
    target.write_text("old")
    events: list[tuple[str, object]] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(outputs.os, "fsync", lambda fd: (events.append(("fsync", os.fstat(fd).st_size)), real_fsync(fd))[1])
    monkeypatch.setattr(outputs.os, "replace", lambda a, b: (events.append(("replace", Path(b).name)), real_replace(a, b))[1])
    with replacing(target) as temporary:
        temporary.write_text("the new content")
    assert events == [("fsync", len("the new content")), ("replace", "book.json")], events
    assert target.read_text() == "the new content"


def test_a_file_set_aside_never_replaces_one_set_aside_before(tmp_path: Path) -> None:
    """A review (2026-12-05): a second unusable paper book replaced the first one kept as ``.unusable``."""
    book = tmp_path / "paper-1.json"
    for text in ("first", "second", "third"):
        book.write_text(text)
        set_aside(book, ".unusable")
    assert not book.exists()
    kept = {p.name: p.read_text() for p in tmp_path.iterdir()}
    assert kept == {"paper-1.json.unusable": "first", "paper-1.json.unusable.2": "second", "paper-1.json.unusable.3": "third"}, kept
