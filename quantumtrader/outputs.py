"""Output files a command promises (``--json``, ``--plot``, ``--out``): checked before its work, replaced whole after it.

Why: ``qt-daemon evaluate`` and the benchmarks run for minutes; an output
path that is a directory, lies under a regular file, names a format the plot
cannot write or an existing file that may not be written used to fail only
when the result was written, with a traceback and the result lost. Both CLIs
call these before anything runs and turn a problem into a usage error (exit
2) naming the option. A write that fails after the work all the same (a disk
that filled meanwhile) goes to a temporary file beside the target, so it
leaves no empty or partial file where the result should be, nor costs the
file that was there; the CLIs then say which file and why (exit 1).
"""

from __future__ import annotations

import os
import re
import secrets
import stat
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

#: What the plots can be written as (matplotlib's backends without extras).
PLOT_SUFFIXES = (".png", ".svg", ".pdf")


class UnwrittenOutput(Exception):
    """An output file that could not be written after the work: which file and why (the CLIs exit 1 on it)."""

    def __init__(self, path: Path, error: OSError) -> None:
        super().__init__(f"cannot write {path}: {error.strerror or error}")
        self.path = path


def _writable_dir_problem(directory: Path) -> str | None:
    if directory.exists() and not directory.is_dir():
        return f"cannot write in {directory}: it is not a directory"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):  # os.access says little on Windows or under root
            pass
    except OSError as exc:
        return f"cannot write in {directory}: {exc.strerror or exc}"
    return None


def _replaceable_problem(path: Path, found: os.stat_result) -> str | None:
    """Why the existing file at ``path`` is not one to replace (None: it is)."""
    if not stat.S_ISREG(found.st_mode):  # /dev/null, a pipe: os.replace would put a regular file in its place
        return f"{path} is not a regular file (a device or a pipe); give a file name"
    try:
        with open(path, "ab"):  # opened for writing, nothing written: a file its user may not write is left alone
            pass
    except OSError as exc:
        return f"cannot replace {path}: {exc.strerror or exc}"
    return None


def output_file_problem(path: Path, suffixes: tuple[str, ...] = ()) -> str | None:
    """Why ``path`` cannot take the file a command will write there (None: it can); makes its directory.

    An existing file is replaced only if its user may write it (a read-only
    result is kept, as ``cp`` would keep it); through a link, the file it
    points to is (:func:`replacing`)."""
    target = Path(os.path.realpath(path))
    try:
        found: os.stat_result | None = os.stat(target)
    except (FileNotFoundError, NotADirectoryError):  # no file yet (a path under a file: said for its directory)
        found = None
    except OSError as exc:  # a name too long, a loop of links
        return f"cannot write {path}: {exc.strerror or exc}"
    if found is not None and stat.S_ISDIR(found.st_mode):
        return f"{path} is a directory; give a file name"
    if suffixes and path.suffix.lower() not in suffixes:
        return f"{path}: the name must end in {', '.join(suffixes)} (the format is taken from it)"
    problem = None if found is None else _replaceable_problem(path, found)
    return problem if problem is not None else _writable_dir_problem(target.parent)


def file_key(path: Path) -> tuple[int, int] | str | None:
    """What names one file whatever the path to it (links, ``..``): its device and inode, or its resolved name where
    the file system gives no inode; None when there is no file there.

    st_ino is unique only when non-zero (Python's docs): some Windows file systems and network redirectors give 0,
    which made two different files "the same" (a review, 2026-12-05); ``os.path.samefile`` compares exactly that."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return (status.st_dev, status.st_ino) if status.st_ino else os.path.normcase(os.path.realpath(path))


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (:func:`file_key`), whether or not it exists yet."""
    key_a, key_b = file_key(a), file_key(b)
    if key_a is None or key_b is None:  # one of them does not exist (yet): their resolved names
        return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))
    return key_a == key_b


def clash_problem(outputs: Mapping[str, Path | None], inputs: Iterable[Path] = ()) -> str | None:
    """Why the outputs (option -> path) would overwrite an input or one another (None: they would not).

    ``evaluate V.csv --json V.csv`` replaced the recorded ticks with the report, and ``--json X.png --plot X.png``
    the report with the plot, each with exit 0 (a hunt, 2026-12-05)."""
    named = [(option, path) for option, path in outputs.items() if path is not None]
    sources = list(inputs)
    for i, (option, path) in enumerate(named):
        for source in sources:
            if same_file(path, source):
                return f"{option} {path} is an input file: writing there would destroy it"
        for other, other_path in named[i + 1 :]:
            if same_file(path, other_path):
                return f"{option} and {other} name one file ({path}): one would replace the other"
    return None


def output_dir_problem(path: Path) -> str | None:
    """Why files cannot be written under ``path`` (None: they can); makes it."""
    return _writable_dir_problem(path)


def keep_files_private() -> None:
    """Files and directories this process creates from now on are its user's alone (umask 077; the processes it
    starts inherit it). For the long-running commands, whose data directory holds the order journal, the
    signals (in clear without a store key), the paper book and the logs: with the usual umask 022 they were
    0644 in a 0755 directory, readable by any account on the machine (a security review, 2026-12-06). The
    users file, the signing secret and the signal journal were already 0600. No effect on Windows, where a
    file's access is its folder's ACL."""
    os.umask(0o077)


def shared_data_dir(path: Path) -> str | None:
    """The data directory's mode when other accounts may enter it (POSIX), else None. The umask above protects what is
    created from now on; a directory made by an earlier version stays 0755 with its files 0644 (the review of the
    change, 2026-12-06), and is said at start rather than changed: it may be one the user shares on purpose."""
    if os.name == "nt":
        return None
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None
    return oct(mode) if mode & 0o077 else None


def _temporary_name(target: Path, tag: str) -> str:
    return f".{target.name[:80]}.{tag}.partial{target.suffix}"


def remove_leftover_temporaries(path: Path) -> int:
    """Delete the temporary files a killed :func:`replacing` of ``path`` left beside it; how many. Only for a
    caller that alone writes ``path`` (the paper terminal, holding its book's lock): another writer's file in
    flight would go too. A kill -9 during each save left one (a crash hunt, 2026-12-06: 9 after 60 kills)."""
    target = Path(os.path.realpath(path))
    pattern = re.compile(re.escape(_temporary_name(target, "TAG")).replace("TAG", "[0-9a-f]{8}"))
    removed = 0
    for leftover in target.parent.glob(_temporary_name(target, "*")):
        if pattern.fullmatch(leftover.name):
            with suppress(OSError):
                leftover.unlink()
                removed += 1
    return removed


def _new_temporary(target: Path) -> Path:
    """An empty file beside ``target``, ending as it does (matplotlib takes the format from the name), created
    with the mode a plain write would give it (a temporary file's own 0o600 would stay after the rename)."""
    while True:
        temporary = target.with_name(_temporary_name(target, secrets.token_hex(4)))
        try:
            os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return temporary
        except FileExistsError:
            continue


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary path to write ``path``'s new content to; when the block ends it replaces ``path`` in one step
    (``os.replace``, keeping an existing file's mode, its content synced to disk first), and when the block or the replacing fails it is removed
    and :class:`UnwrittenOutput` says which file and why; ``path`` is then as it was.

    Through a link the linked file is replaced, as a plain write would do."""
    target = Path(os.path.realpath(path))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = _new_temporary(target)
    except OSError as exc:
        raise UnwrittenOutput(path, exc) from exc
    try:
        yield temporary
        if target.exists():
            os.chmod(temporary, stat.S_IMODE(os.stat(target).st_mode))
        # On disk before the name points at it: after a power cut the old content or the new, never an empty file
        # (the paper terminal's book, "as a broker keeps it", was the case; a review, 2026-12-05).
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException as exc:
        with suppress(OSError):  # the reason to report is the write's, not a failed clean-up's
            temporary.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise UnwrittenOutput(path, exc) from exc
        raise


def write_json(path: Path, value: Any) -> None:
    """``value`` as indented JSON (numpy arrays and numbers too), replacing ``path`` whole or not at all
    (:class:`UnwrittenOutput`): evaluate's report and every benchmark's figures."""
    import orjson

    with replacing(path) as temporary:
        temporary.write_bytes(orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))


def save_figure(figure: Any, path: Path) -> None:
    """A matplotlib figure in the format its name ends in, replacing ``path`` whole or not at all
    (:class:`UnwrittenOutput`); the figure is closed either way: evaluate's plot and the benchmarks'."""
    import matplotlib.pyplot as plt

    try:
        with replacing(path) as temporary:
            figure.savefig(temporary, dpi=110)
    finally:
        plt.close(figure)


def set_aside(path: Path, suffix: str) -> Path:
    """Rename ``path`` beside itself as ``<name><suffix>``, never over an earlier one: ``<suffix>.2``, ``.3``...

    For a file that cannot be used (a damaged journal, an unusable paper book) and is kept as evidence that
    may be mended by hand: a second one of the same name used to replace the first's. OSError if the OS
    refuses the rename (the caller leaves the file where it is)."""
    kept = path.with_name(path.name + suffix)
    n = 1
    while kept.exists():
        n += 1
        kept = path.with_name(f"{path.name}{suffix}.{n}")
    path.replace(kept)
    return kept
