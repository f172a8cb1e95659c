"""``qt-daemon evaluate``: recorded ticks through the daemon's own pipeline, scored against baselines.

Modules: ``scoring`` (pure numpy definitions), ``replay`` (validation and the
pipeline), ``report`` (strategies, table, plot), ``run`` (the command). Not
imported here, so the scoring definitions load without the Numba kernels.
"""
