"""Ensemble components, online learners and the signal policy (DESIGN.md, "Models and signals").

``SignalPipeline`` (features + models + signal objects) lives in
:mod:`quantumtrader.models.pipeline`; it is not imported here so that the
models can be used and tested without the feature engine.
"""

from quantumtrader.models.engine import ModelEngine, StepResult
from quantumtrader.models.policy import BUY, HOLD, PREDICTIONS, SELL, classify
from quantumtrader.models.state import ModelState, PolicyState, make_model_state, make_policy_state

__all__ = [
    "BUY",
    "HOLD",
    "PREDICTIONS",
    "SELL",
    "ModelEngine",
    "ModelState",
    "PolicyState",
    "StepResult",
    "classify",
    "make_model_state",
    "make_policy_state",
]
