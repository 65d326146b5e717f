"""The protocol's names and codes, read from protocol/protocol.json (shared with the TypeScript side).

Stdlib only: the bootstrap imports this before numpy/cv2/torch, to report startup failures.
"""

from __future__ import annotations

import json
from pathlib import Path

PROTOCOL_JSON = Path(__file__).resolve().parents[2] / "protocol" / "protocol.json"

with open(PROTOCOL_JSON, encoding="utf-8") as _f:
    SPEC: dict = json.load(_f)

METHODS: dict[str, str] = SPEC["methods"]
NOTIFICATIONS: dict[str, str] = SPEC["notifications"]
RPC_ERROR_CODES: dict[str, int] = SPEC["rpcErrorCodes"]
FRAME_ERROR_CODES: dict[str, str] = SPEC["frameErrorCodes"]
STARTUP_FAILURE_TYPES: dict[str, str] = {k: v for k, v in SPEC["startupFailureTypes"].items() if not k.startswith("$")}
FRAME_ENCODINGS: list[str] = SPEC["frameEncodings"]
TRACE_CONTEXT: dict[str, str] = {k: v for k, v in SPEC["traceContext"].items() if not k.startswith("$")}
KEYPOINT_SETS: dict[str, dict] = SPEC["keypointSets"]
MODELS: dict[str, dict] = {k: v for k, v in SPEC["models"].items() if not k.startswith("$")}
PERSON_EXTRAS: dict[str, dict] = {k: v for k, v in SPEC.get("personExtras", {}).items() if not k.startswith("$")}


def keypoint_set(name: str) -> tuple[list[str], list[tuple[int, int]]]:
    """(keypoint names, skeleton edges) of a keypoint set, e.g. "coco17"."""
    entry = KEYPOINT_SETS[name]
    return list(entry["names"]), [(int(a), int(b)) for a, b in entry["skeleton"]]


def model_names(include_test_doubles: bool = True) -> list[str]:
    return [n for n, m in MODELS.items() if include_test_doubles or not m.get("testDouble")]
