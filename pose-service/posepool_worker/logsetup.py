"""Worker logging: stderr only, one line per record, prefixed with the worker's pid and the level.

LOG_LEVEL takes the server's pino level names (trace, debug, info, warn, error, fatal, silent).
"""

from __future__ import annotations

import logging
import os
import sys

PINO_LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
    "silent": logging.CRITICAL + 10,
}


def setup_logging() -> None:
    level = PINO_LEVELS.get(os.environ.get("LOG_LEVEL", "info").strip().lower(), logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"[posepool-worker {os.getpid()}] %(levelname)s %(message)s"))
    root = logging.getLogger("posepool_worker")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
