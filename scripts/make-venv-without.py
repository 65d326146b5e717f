"""For the tests, an interpreter that lacks a module: a venv of the interpreter that runs this script which
sees every package that interpreter sees except the modules named (e.g. numpy and torch but not cv2).

    PY scripts/make-venv-without.py DIR MODULE [MODULE ...]   make it; prints {"python": ...} as JSON
    PY scripts/make-venv-without.py --restore DIR             make the left-out modules importable in it

Whatever way the set-up made PY (a pip venv, Debian's packages, pyenv), its package folders are the
site-packages/dist-packages entries of its sys.path. The venv (python -m venv --without-pip) gets one .pth
file pointing at a folder of symlinks to every entry of those folders, first one wins as on sys.path,
except the left-out modules (NAME, NAME.*.so, NAME-*.dist-info). --restore adds their symlinks, so the
same running interpreter finds the real module from then on. Stdlib only.
"""

import json
import os
import subprocess
import sys

STATE = "left-out.json"


def package_dirs():
    dirs = []
    for entry in sys.path:
        if entry and os.path.basename(entry) in ("site-packages", "dist-packages") and os.path.isdir(entry):
            real = os.path.realpath(entry)
            if real not in dirs:
                dirs.append(real)
    return dirs


def is_left_out(name, modules):
    return any(name == m or name.startswith((m + ".", m + "-")) for m in modules)


def make(target, modules):
    target = os.path.abspath(target)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", target], check=True)
    scripts = "Scripts" if os.name == "nt" else "bin"
    python = os.path.join(target, scripts, "python.exe" if os.name == "nt" else "python")
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    links = os.path.join(target, "packages")
    os.makedirs(links)
    left_out = []
    for folder in package_dirs():
        for name in sorted(os.listdir(folder)):
            if name.endswith(".pth") or os.path.lexists(os.path.join(links, name)):
                continue
            source = os.path.join(folder, name)
            if is_left_out(name, modules):
                if not any(n == name for n, _ in left_out):
                    left_out.append((name, source))
                continue
            os.symlink(source, os.path.join(links, name))
    with open(os.path.join(site, "_posepool_packages.pth"), "w", encoding="utf-8") as f:
        f.write(links + "\n")
    with open(os.path.join(target, STATE), "w", encoding="utf-8") as f:
        json.dump({"links": links, "leftOut": left_out}, f)
    return {"python": python, "packageDirs": package_dirs(), "leftOut": [n for n, _ in left_out]}


def restore(target):
    with open(os.path.join(os.path.abspath(target), STATE), encoding="utf-8") as f:
        state = json.load(f)
    for name, source in state["leftOut"]:
        link = os.path.join(state["links"], name)
        if not os.path.lexists(link):
            os.symlink(source, link)
    return {"restored": [n for n, _ in state["leftOut"]]}


def main(argv):
    if len(argv) == 2 and argv[0] == "--restore":
        out = restore(argv[1])
    elif len(argv) >= 2 and not argv[0].startswith("-"):
        out = make(argv[0], argv[1:])
        if not out["leftOut"]:
            sys.stderr.write(f"none of {argv[1:]} is installed for {sys.executable} (folders: {out['packageDirs']})\n")
            return 1
    else:
        sys.stderr.write(__doc__)
        return 64
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
