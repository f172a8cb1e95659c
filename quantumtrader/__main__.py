"""``python -m quantumtrader`` is ``qt-daemon`` (how the daemon starts its children)."""

from quantumtrader.cli import main

main()
