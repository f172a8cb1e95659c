"""QuantumTrader: a low-latency trading daemon for MetaTrader terminals over ZeroMQ."""

__version__ = "0.1.0"
