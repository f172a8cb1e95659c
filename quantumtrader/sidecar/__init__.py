"""The sidecar: REST, WebSocket and auth for the QuantumTrader-Pro app (PROTOCOL.md, "App API")."""

from quantumtrader.sidecar.app import create_app
from quantumtrader.sidecar.server import run_sidecar

__all__ = ["create_app", "run_sidecar"]
