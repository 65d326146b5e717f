"""W3C trace context for one ``detect`` call (protocol.json ``traceContext``), stdlib only.

The server sends its batch span as ``traceparent``. When that span is sampled, the worker times its own
part of the call and answers with a span of its own: same trace, the server's span as parent, a fresh
random span id, wall-clock times (``time.time_ns``). The server exports it with the rest of the trace.
No OpenTelemetry package is needed here (one install route is Debian's packages, which have none).
Without a traceparent (the server is not tracing) nothing is measured or sent.
"""

from __future__ import annotations

import os
import re
import time

from . import protocol

PARAM = protocol.TRACE_CONTEXT["param"]
RESULT_FIELD = protocol.TRACE_CONTEXT["resultField"]
SPAN_NAME = protocol.TRACE_CONTEXT["spanName"]

# version-traceid-parentid-flags; versions after 00 may add fields (W3C Trace Context, level 1, 3.2).
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
_SAMPLED = 0x01
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


def parse_traceparent(value: str) -> tuple[str, str, int] | None:
    """(trace id, parent span id, flags) of a W3C traceparent; None where it is not valid (the spec: ignore it)."""
    match = _TRACEPARENT.fullmatch(value)
    if match is None:
        return None
    version, trace_id, parent_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest) or trace_id == _ZERO_TRACE or parent_id == _ZERO_SPAN:
        return None
    return trace_id, parent_id, int(flags, 16)


def new_span_id() -> str:
    """16 random lowercase hex digits, never all zero (an invalid id)."""
    while True:
        span_id = os.urandom(8).hex()
        if span_id != _ZERO_SPAN:
            return span_id


class DetectSpan:
    """The worker's span of one detect call: started when the call is taken, reported when it answers."""

    def __init__(self, trace_id: str, parent_id: str):
        self.trace_id = trace_id
        self.parent_id = parent_id
        self.span_id = new_span_id()
        self.start_ns = time.time_ns()

    @classmethod
    def start(cls, traceparent: str | None) -> DetectSpan | None:
        """A span for a sampled traceparent; None without one, or for one not sampled or not valid."""
        if traceparent is None:
            return None
        parsed = parse_traceparent(traceparent)
        if parsed is None or not parsed[2] & _SAMPLED:
            return None
        return cls(parsed[0], parsed[1])

    def finish(self, attributes: dict[str, str | int | float | bool]) -> dict:
        """The span as the detect result carries it (protocol/detect.ts ``WorkerSpan``)."""
        return {
            "name": SPAN_NAME,
            "traceId": self.trace_id,
            "spanId": self.span_id,
            "parentSpanId": self.parent_id,
            "startTimeUnixNano": str(self.start_ns),
            "endTimeUnixNano": str(time.time_ns()),
            "attributes": attributes,
        }
