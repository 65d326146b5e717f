"""protocol/README.md documents every name and code of protocol.json (per-person extras included), and every synthetic
fault."""

from pathlib import Path

from posepool_worker import protocol
from posepool_worker.backends.synthetic import FAULT_TYPES

README = (Path(__file__).resolve().parents[2] / "protocol" / "README.md").read_text(encoding="utf-8")

NAMES = (
    [("method", m) for m in protocol.METHODS.values()]
    + [("notification", n) for n in protocol.NOTIFICATIONS.values()]
    + [("rpc error", f"`{name}` | {code} |") for name, code in protocol.RPC_ERROR_CODES.items()]
    + [("frame error", f"`{code}`") for code in protocol.FRAME_ERROR_CODES]
    + [("startup failure", f"`{t}`") for t in protocol.STARTUP_FAILURE_TYPES]
    + [("encoding", f"`{e}`") for e in protocol.FRAME_ENCODINGS]
    + [("trace context", f"`{name}`") for name in protocol.TRACE_CONTEXT.values()]
    + [("person extra", f"`{x}`") for x in protocol.PERSON_EXTRAS]
    + [("synthetic fault", f"`{f}") for f in FAULT_TYPES]
)


def test_every_name_and_code_is_documented():
    missing = [f"{kind} {text!r}" for kind, text in NAMES if text not in README]
    assert not missing, f"not documented in protocol/README.md: {missing}"
