"""Checks one Python interpreter for the pose-service's modules by importing them (stdlib only).

Run it with the interpreter to check:

    PY scripts/check-python.py [--tests] [--json] [--write FILE --how HOW]

Reads the module list from pose-service/posepool_worker/python-modules.txt. Exit status:
  0  every "worker" module imports (and, with --tests, every "tests" module too)
  1  a worker module is missing, or the Python is too old
  2  only a tests module is missing (with --tests)
Prints one line (or, with --json, one JSON object) on stdout; whatever the imported libraries print
goes to stderr. With --write, also records the interpreter as the set-up's choice (the JSON file the
server, the doctor and the test runner read): {python, version, modules, checkedAt, how, cuda, ...}.
"""

# %-formatting, not f-strings: the interpreters this checks may be too old for them, and must still be told so.
# ruff: noqa: UP031
import argparse
import datetime
import importlib
import json
import os
import platform
import sys
import traceback

MIN_PYTHON = (3, 9)
HERE = os.path.dirname(os.path.abspath(__file__))
MODULES_FILE = os.path.join(HERE, os.pardir, "pose-service", "posepool_worker", "python-modules.txt")


def read_module_table(path):
    """[(import name, pip package, apt package, needed by)] from python-modules.txt."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            name, pip_name, apt_name, needed_by = line.split()
            rows.append((name, pip_name, apt_name, needed_by))
    return rows


def try_import(name):
    """(version or None, error text or None)."""
    try:
        mod = importlib.import_module(name)
    except BaseException as exc:  # ImportError, but also OSError from a broken shared library
        return None, "%s: %s" % (type(exc).__name__, exc)
    return str(getattr(mod, "__version__", "unknown")), None


def accelerator_info():
    """CUDA devices torch can see (and Apple MPS); {} when torch is not importable."""
    torch = sys.modules.get("torch")
    if torch is None:
        return {}
    info = {"cudaBuilt": getattr(torch.version, "cuda", None), "deviceCount": 0, "devices": []}
    try:
        if torch.cuda.is_available():
            info["deviceCount"] = torch.cuda.device_count()
            info["devices"] = [torch.cuda.get_device_name(i) for i in range(info["deviceCount"])]
    except Exception as exc:  # a driver problem must not break the module check
        info["error"] = "%s: %s" % (type(exc).__name__, exc)
    try:
        info["mps"] = bool(torch.backends.mps.is_available())
    except Exception:
        info["mps"] = False
    return info


# Libraries that export these are optimized BLAS builds.
OPTIMIZED_BLAS_SYMBOLS = ("openblas_get_config", "bli_info_get_version_str", "MKL_Get_Version", "mkl_get_version")


def blas_info():
    """The BLAS libraries this process mapped (Linux: /proc/self/maps, after the imports) and whether one is the
    unoptimized reference BLAS: a libblas.so in a folder named ``blas`` (Debian's and Ubuntu's libblas3; ATLAS and
    OpenBLAS install theirs in folders of their own) exporting no optimized BLAS's symbols. On it BlazePose-heavy's
    landmark model took 1.03 s a frame on torch 1.13, against 0.053 s on OpenBLAS. {} where it cannot be told
    (no /proc), {"error": ...} where looking failed: the module check must never fail for this."""
    if not os.path.exists("/proc/self/maps"):
        return {}
    try:
        import ctypes
        import re

        paths = set()
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
            for line in f:
                fields = line.split(None, 5)
                name = fields[5].strip() if len(fields) == 6 else ""
                if name and re.match(r"lib(open)?blas|libblis|libmkl_rt", os.path.basename(name)):
                    paths.add(os.path.realpath(name))
        libraries = []
        for path in sorted(paths):
            folder = os.path.basename(os.path.dirname(path))
            reference = os.path.basename(path).startswith("libblas") and folder == "blas"
            if reference:
                try:
                    lib = ctypes.CDLL(path)
                    reference = not any(hasattr(lib, name) for name in OPTIMIZED_BLAS_SYMBOLS)
                except OSError:
                    reference = False  # cannot tell: do not accuse it
            libraries.append({"path": path, "reference": reference})
        return {"libraries": libraries, "reference": any(lib["reference"] for lib in libraries)}
    except Exception as exc:
        return {"error": "%s: %s" % (type(exc).__name__, exc)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--modules-file", default=MODULES_FILE)
    ap.add_argument("--tests", action="store_true", help="the tests' modules are required too")
    ap.add_argument("--json", action="store_true", help="print a JSON object instead of one line")
    ap.add_argument("--write", metavar="FILE", help="record this interpreter as the set-up's choice")
    ap.add_argument("--how", default="found", help="how the set-up got this interpreter (recorded)")
    args = ap.parse_args()

    # Keep stdout for our answer only: libraries that print at import time write to stderr.
    answer = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    table = read_module_table(args.modules_file)
    modules, missing = {}, {}
    too_old = sys.version_info[:2] < MIN_PYTHON
    if not too_old:
        for name, _pip, _apt, _needed_by in table:
            version, error = try_import(name)
            if version is not None:
                modules[name] = version
            else:
                missing[name] = error
    worker_missing = [n for n, _p, _a, by in table if by == "worker" and n in missing]
    tests_missing = [n for n, _p, _a, by in table if by == "tests" and n in missing]
    if too_old or worker_missing:
        status = 1
    elif args.tests and tests_missing:
        status = 2
    else:
        status = 0

    result = {
        "python": sys.executable,
        "version": platform.python_version(),
        "ok": status == 0,
        "modules": modules,
        "missing": missing,
        "workerMissing": worker_missing,
        "testsMissing": tests_missing,
        "tooOld": too_old,
        "accelerator": accelerator_info(),
        "blas": blas_info(),
    }

    if args.write and status == 0:
        record = {
            "python": sys.executable,
            "version": platform.python_version(),
            "modules": modules,
            "checkedAt": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "how": args.how,
            "cudaDeviceCount": result["accelerator"].get("deviceCount", 0),
            "accelerator": result["accelerator"],
            "blas": result["blas"],
            "rejected": [
                {"python": p, "reason": r}
                for p, _, r in (
                    line.partition("\t") for line in os.environ.get("POSEPOOL_REJECTED", "").splitlines() if line
                )
            ],
        }
        tmp = args.write + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(record, f, indent=2)
            f.write("\n")
        os.replace(tmp, args.write)

    if args.json:
        answer.write(json.dumps(result) + "\n")
    else:
        head = "%s (Python %s)" % (sys.executable, platform.python_version())
        if too_old:
            line = "too old: %s; need Python %d.%d or newer" % (head, *MIN_PYTHON)
        elif status == 1:
            line = "missing %s: %s: %s" % (
                " ".join(worker_missing),
                head,
                "; ".join(missing[n] for n in worker_missing),
            )
        else:
            found = ", ".join("%s %s" % kv for kv in modules.items())
            line = "%s %s: %s" % ("ok" if status == 0 else "missing " + " ".join(tests_missing), head, found)
        answer.write(line + "\n")
    answer.flush()
    return status


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SystemExit:
        raise
    except BaseException:
        traceback.print_exc()
        sys.exit(3)
