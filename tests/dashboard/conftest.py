from __future__ import annotations

import sys
from pathlib import Path

# The dashboard tests run on the sidecar tests' real-process stack (tests/sidecar/sidecar_stack.py).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "sidecar"))
