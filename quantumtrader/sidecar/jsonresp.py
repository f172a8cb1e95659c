"""A JSON response rendered with orjson (3-10x faster than json, NaN as null)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        # OPT_SERIALIZE_NUMPY: never needed today, harmless; non-str keys are a bug, so not allowed.
        return orjson.dumps(content)
