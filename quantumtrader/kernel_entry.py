"""Calling a Numba kernel through its compiled overload's entry point, not through the dispatcher.

Numba's dispatcher types every argument on every call, and a NamedTuple of
arrays (the engines' state) goes through its Python ``typeof``: ~2-3 µs a
call, more than a kernel's own work on the daemon's 2-3 tick batches. The
entry point of a compiled overload takes the same arguments without that
step, but it is valid only for the exact Numba types it was compiled for: it
unboxes whatever it is given as those types. So the overload is looked up by
a key that pins the types of the arguments that vary per call
(:func:`array_types`), and the caller guarantees that every other argument
never changes type (the engines grow and restore their state by copying into
fresh arrays of the same dtypes and ranks).

Shared by ``FeatureEngine.update`` and ``ModelEngine.step``, the two calls
the daemon makes per tick batch.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import numpy as np
from numba.core.dispatcher import Dispatcher


def array_types(*arrays: np.ndarray) -> tuple[Hashable, ...]:
    """What decides each array's Numba type: dtype, rank and the flags word.

    The flags word holds C/F contiguity (Numba's layout), writeable and
    aligned, and also OWNDATA, which Numba ignores: a view and an owning
    array of one type get two keys for the same overload, which costs one
    extra lookup, never a wrong call. One integer read instead of four flags
    is ~110 instead of ~160 ns an array.
    """
    return tuple([(a.dtype, a.ndim, a.flags.num) for a in arrays])


class CompiledKernel:
    """One ``@njit`` kernel, called through its overloads' entry points, keyed by :func:`array_types`."""

    __slots__ = ("_dispatcher", "_entries")

    def __init__(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher
        self._entries: dict[tuple[Hashable, ...], Callable[..., Any]] = {}

    def __call__(self, key: tuple[Hashable, ...], *args: Any) -> Any:
        """The kernel on ``args``; ``key`` must pin the Numba types of every argument that varies between calls."""
        entry = self._entries.get(key)
        if entry is None:
            entry = self._resolve(key, args)
        return entry(*args)

    def _resolve(self, key: tuple[Hashable, ...], args: tuple[Any, ...]) -> Callable[..., Any]:
        """The overload for these arguments' types: compiled, or loaded from Numba's cache, on first sight of the key."""
        dispatcher = self._dispatcher
        entry: Callable[..., Any] = dispatcher.compile(tuple(dispatcher.typeof_pyval(a) for a in args))
        self._entries[key] = entry
        return entry
