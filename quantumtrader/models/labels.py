"""The label the learners learn and ``evaluate`` scores: did mid rise over the horizon?

One rule for both, so that what the models are trained towards is what they
are judged on. A mid is the float half of bid + ask, and two quotes with the
same true mid can give halves a bit apart ((1.39308 + 1.39325) / 2 =
1.3931650000000002, (1.3931 + 1.39323) / 2 = 1.393165): compared as floats a
tie, "not up" and a miss for both sides, read as a move (a review of the
evaluation, 2026-12-06: 2 of OANDA's 1,768 trades, 11 of FXCM's 3,531). A
change is a move when it is more than :data:`TIE_RELATIVE` of the price:
rounding leaves at most ~2.2e-16 of it (measured at prices from 1e-6 to
1e5), 45 times less, and a real move is at least half a point, which is
more even at the protocol's top price, 1e12, quoted to the point (5e-13).
"""

from __future__ import annotations

from typing import Any

from numba import njit

TIE_RELATIVE = 1e-14


@njit(cache=True, inline="always")
def mid_rose(later: Any, earlier: Any) -> Any:
    """Whether ``later`` is above ``earlier`` by more than rounding: scalars in the kernel, or, through
    ``mid_rose.py_func``, numpy arrays elementwise. A fall is ``mid_rose(earlier, later)``."""
    return later - earlier > TIE_RELATIVE * abs(earlier)  # abs: a tie is never both a rise and a fall
