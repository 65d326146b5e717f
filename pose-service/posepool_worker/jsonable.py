"""Backend output -> plain JSON values: numpy arrays/scalars to lists/numbers, NaN/Infinity to null.

Stdlib only: anything with ``tolist()`` (numpy, torch tensors) is converted through it.
"""

from __future__ import annotations

import math
from typing import Any


def to_jsonable(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars, torch tensors
    if callable(tolist):
        return to_jsonable(tolist())
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
