"""Worker start-up: protect the protocol stream, import the heavy modules under a guard, load the model once,
announce ready (or a structured startup failure), then serve requests until shutdown or stdin EOF.

Order matters and is the point of this module:
1. Take the real stdout for the protocol (``os.dup(1)``) and point fd 1 at stderr (``os.dup2(2, 1)``) and
   ``sys.stdout`` at ``sys.stderr``: from here on print(), libraries and C code cannot write on the stream.
2. Start the stdin reader thread, so EOF (the server died) ends the process even during the model load.
3. Import numpy, cv2, torch and the backend inside a guard: any failure becomes a ``worker/startupFailed``
   notification {type, message, missingModule, hint, python, traceback} and exit code 3.
Until step 3 only the standard library is imported.
"""

from __future__ import annotations

import argparse
import faulthandler
import logging
import os
import platform
import signal
import sys
import time
import traceback
from pathlib import Path

from .errors import StartupError, hint_for_missing_module
from .framing import MessageWriter
from .logsetup import setup_logging

log = logging.getLogger("posepool_worker")

EXIT_STARTUP_FAILED = 3
PACKAGE_DIR = Path(__file__).resolve().parent
SERVICE_DIR = PACKAGE_DIR.parent  # pose-service/
REPO_ROOT = SERVICE_DIR.parent
STARTUP_FAILED = "worker/startupFailed"  # also in protocol.json; literal here so a broken protocol.json is reported


def take_stdout() -> int:
    """Keep the real stdout for the protocol; everything else that writes to fd 1 lands on stderr."""
    sys.stdout.flush()
    protocol_fd = os.dup(1)  # not inherited by child processes (PEP 446)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return protocol_fd


def exit_now(code: int) -> None:
    """Leave at once: no atexit, no waiting for threads or a running batch."""
    try:
        sys.stderr.flush()
    finally:
        os._exit(code)


def on_stdin_eof() -> None:
    log.info("stdin closed (the server is gone); exiting")
    exit_now(0)


class _ArgParser(argparse.ArgumentParser):
    def error(self, message: str):  # a startup failure like any other, instead of usage text and exit 2
        raise StartupError("BadArguments", message, f"usage: {self.format_usage().strip()}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = _ArgParser(prog="python -m posepool_worker", description="posepool pose worker (JSON-RPC on stdio)")
    p.add_argument(
        "--model",
        default=os.environ.get("POSE_MODEL", "movenet-thunder"),
        help="protocol.json model name (env POSE_MODEL)",
    )
    p.add_argument(
        "--device", default=os.environ.get("POSE_DEVICE", "auto"), help="auto, cpu, cuda or cuda:N (env POSE_DEVICE)"
    )
    p.add_argument(
        "--threads",
        default=os.environ.get("POSE_THREADS", "auto"),
        help="torch intra-op / OpenMP / OpenCV threads, or auto for the libraries' defaults",
    )
    p.add_argument(
        "--models-dir",
        default=os.environ.get("POSE_MODELS_DIR") or str(SERVICE_DIR / ".models"),
        help="downloaded weights (env POSE_MODELS_DIR)",
    )
    args = p.parse_args(argv)
    if str(args.threads).strip().lower() in ("auto", "", "0"):
        args.threads = None
    else:
        try:
            args.threads = int(args.threads)
            if args.threads < 1:
                raise ValueError
        except ValueError:
            p.error(f"--threads must be a positive integer or auto, got {args.threads!r}")
    return args


def describe_failure(err: BaseException, importing: str | None) -> dict:
    """The worker/startupFailed params for an exception raised while starting."""
    missing = None
    if isinstance(err, StartupError):
        kind, message, hint, missing = err.type, err.message, err.hint, err.missing_module
    elif isinstance(err, ModuleNotFoundError):
        kind, message = "ModuleNotFoundError", str(err)
        missing = err.name or importing
        hint = hint_for_missing_module(missing)
    elif isinstance(err, ImportError):
        kind, message = type(err).__name__, str(err)
        missing = err.name or importing
        if "libGL" in message or "libgthread" in message:
            hint = (
                "opencv-python needs a desktop's libraries: pip install opencv-python-headless instead "
                "(Debian: apt-get install python3-opencv), or run `npm run setup`"
            )
        else:
            hint = (
                f"the module {missing or importing or ''} is installed but does not import; "
                "run `npm run setup` to repair the pose-service environment, then `npm run doctor`"
            ).replace("  ", " ")
    else:
        kind, message = type(err).__name__, str(err) or type(err).__name__
        hint = "see the worker's stderr for the traceback; `npm run doctor` checks the set-up"
    return {
        "type": kind,
        "message": message,
        "missingModule": missing,
        "hint": hint,
        "python": sys.executable,
        "traceback": "".join(traceback.format_exception(type(err), err, err.__traceback__)),
    }


def main(argv: list[str] | None = None) -> None:
    started = time.monotonic()
    protocol_fd = take_stdout()
    setup_logging()
    faulthandler.enable()  # a native crash (segfault in a library) leaves its Python stack on stderr
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the server drains us
    writer = MessageWriter(protocol_fd)
    importing = None
    try:
        from . import protocol
        from .rpc import Connection

        conn = Connection(0, protocol_fd, on_eof=on_stdin_eof)
        conn.start_reader()

        args = parse_args(argv)
        from . import runtime
        from .backends import check_model

        check_model(args.model)  # a bad POSE_MODEL or POSE_DEVICE fails before the slow imports
        runtime.check_device_spec(args.device)

        runtime.set_thread_env(args.threads)
        importing = "numpy"
        import numpy

        importing = "cv2"
        import cv2

        importing = "torch"
        import torch

        importing = None

        threads = runtime.apply_threads(args.threads, torch, cv2)
        device = runtime.resolve_device(args.device, torch)

        from .backends import backend_class
        from .backends.base import LoadContext
        from .service import WorkerService

        backend_cls = backend_class(args.model)
        ctx = LoadContext(
            model=args.model, device=device, threads=threads, models_dir=Path(args.models_dir), repo_root=REPO_ROOT
        )
        backend = backend_cls.load(ctx)
        ready = {
            "pid": os.getpid(),
            "python": sys.executable,
            "pythonVersion": platform.python_version(),
            "model": {
                "name": args.model,
                "keypoints": list(backend.keypoints),
                "skeleton": [[int(a), int(b)] for a, b in backend.skeleton],
                "extras": list(backend.extras),
            },
            "device": str(device),
            "threads": threads,
            "versions": {
                "python": platform.python_version(),
                "torch": torch.__version__,
                "numpy": numpy.__version__,
                "cv2": cv2.__version__,
            },
            "loadMs": int((time.monotonic() - started) * 1000),
        }
        service = WorkerService(backend, args.model, device, torch)
    except BaseException as err:  # every start-up failure is reported, whatever it is
        if isinstance(err, SystemExit) and not err.code:
            exit_now(0)
        failure = describe_failure(err, importing)
        log.error(
            "startup failed: %s: %s\n  hint: %s\n%s",
            failure["type"],
            failure["message"],
            failure["hint"],
            failure["traceback"],
        )
        try:
            writer.write({"jsonrpc": "2.0", "method": STARTUP_FAILED, "params": failure})
        except OSError:
            pass  # the server is gone; nobody to tell
        exit_now(EXIT_STARTUP_FAILED)

    try:
        conn.notify(protocol.NOTIFICATIONS["ready"], ready)
        log.info(
            "ready: model=%s device=%s threads=%s load=%dms python=%s",
            args.model,
            device,
            threads,
            ready["loadMs"],
            sys.executable,
        )
        backend.on_ready()
        conn.serve(service.handlers(), stop=lambda: service.stopping)
    except BrokenPipeError:
        log.info("stdout closed (the server is gone); exiting")
        exit_now(0)
    if service.stopping:
        log.info("shutdown requested; exiting")
    exit_now(0)
