"""``qt-daemon evaluate``: recorded ticks through the daemon's own pipeline, scored against baselines."""

from quantumtrader.evaluate.run import run, run_evaluation, write_json

__all__ = ["run", "run_evaluation", "write_json"]
