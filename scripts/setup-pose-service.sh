#!/usr/bin/env bash
# The pose-service set-up (Linux, macOS): find or make a Python interpreter that can import every
# module in pose-service/posepool_worker/python-modules.txt, and record it in pose-service/.python-choice.json, which the
# server, the doctor and the test runner read.
#
#   scripts/setup-pose-service.sh [--tests] [--force]
#     --tests   also make sure the tests' modules (pytest) are there (npm test passes it)
#     --force   ignore the recorded choice and search again
#
# Candidates, in order (each checked by importing the modules with it): POSE_PYTHON,
# pose-service/.venv, python3 and python on PATH, /usr/bin/python3. If none has them: a new
# pose-service/.venv with pip when a package index answers, else Debian/Ubuntu packages through
# apt-get (as root or with password-less sudo), else a message saying what is missing and how to fix it.
# Idempotent: with a recorded choice that still imports everything it takes one check (~1-2 s).
# POSEPOOL_SETUP_NO_INSTALL=1: only look for an interpreter, never create a venv or install packages.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SERVICE="$ROOT/pose-service"
CHOICE="$SERVICE/.python-choice.json"
CHECK="$ROOT/scripts/check-python.py"
MODULES_FILE="$SERVICE/posepool_worker/python-modules.txt"
VENV="$SERVICE/.venv"
INDEX_TIMEOUT_S="${POSEPOOL_INDEX_TIMEOUT_S:-5}"
may_install=1
[ "${POSEPOOL_SETUP_NO_INSTALL:-}" = 1 ] && may_install=0

want_tests=0
force=0
for arg in "$@"; do
  case "$arg" in
    --tests) want_tests=1 ;;
    --force) force=1 ;;
    -h|--help) sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup: unknown option $arg (use --tests, --force)" >&2; exit 64 ;;
  esac
done

say() { echo "setup: $*"; }
die() { echo "setup: FAILED: $*" >&2; exit 1; }

# --- the module table --------------------------------------------------------------------------
worker_modules=() ; worker_pips=() ; worker_apts=()
test_modules=()   ; test_pips=()   ; test_apts=()
while read -r name pip apt needed_by _rest; do
  case "$name" in ''|'#'*) continue ;; esac
  if [ "$needed_by" = tests ]; then
    test_modules+=("$name"); test_pips+=("$pip"); test_apts+=("$apt")
  else
    worker_modules+=("$name"); worker_pips+=("$pip"); worker_apts+=("$apt")
  fi
done < "$MODULES_FILE"
[ "${#worker_modules[@]}" -gt 0 ] || die "no modules listed in $MODULES_FILE"

check_args=()
[ "$want_tests" = 1 ] && check_args+=(--tests)

# check PY HOW: runs the import check with PY; sets check_line and returns the checker's status
# (0 ok, 1 a worker module missing / not usable, 2 only a tests module missing). On 0 the checker has
# also written the would-be record to $CANDIDATE (with HOW and the interpreters rejected so far).
CANDIDATE="$CHOICE.candidate"
rejected=""
check_line=""
check() {
  local py="$1" how="$2" rc=0
  rm -f "$CANDIDATE"
  check_line="$(POSEPOOL_REJECTED="$rejected" "$py" "$CHECK" ${check_args[@]+"${check_args[@]}"} --write "$CANDIDATE" --how "$how" 2>/dev/null)" || rc=$?
  if [ -z "$check_line" ]; then
    check_line="$py is not a usable Python 3 (the check exited with status $rc)"
    [ "$rc" = 0 ] && rc=1
  fi
  [ "$rc" -le 2 ] || rc=1
  return "$rc"
}
trap 'rm -f "$CANDIDATE"' EXIT

# record: the last successful check becomes the set-up's choice.
record() {
  [ -f "$CANDIDATE" ] || die "internal: no checked interpreter to record"
  mv -f "$CANDIDATE" "$CHOICE"
  say "using $check_line"
  say "recorded in ${CHOICE#"$ROOT"/} (how: $1)"
}

# --- package managers ----------------------------------------------------------------------------
SUDO=""
apt_usable() {
  command -v apt-get >/dev/null 2>&1 || return 1
  if [ "$(id -u)" = 0 ]; then SUDO=""; return 0; fi
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; return 0; fi
  return 1
}

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  local missing_candidate=0 pkg
  for pkg in "$@"; do
    apt-cache show "$pkg" >/dev/null 2>&1 || missing_candidate=1
  done
  if [ "$missing_candidate" = 1 ] || [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v -e '^lock$' -e '^partial$' || true)" ]; then
    say "apt-get update"
    if ! $SUDO apt-get update -q >&2; then
      say "apt-get update failed (is the Debian/Ubuntu mirror reachable?)"
      return 1
    fi
  fi
  say "apt-get install -y $*"
  $SUDO apt-get install -y -q --no-install-recommends "$@" >&2
}

# requirement_args: pip's arguments for the worker's packages (and the tests' with --tests): the
# pose-service's pinned requirement files when they exist, else the pip column of the module table.
requirement_args() {
  if [ "$want_tests" = 1 ] && [ -f "$SERVICE/requirements-dev.txt" ]; then
    echo "-r" "$SERVICE/requirements-dev.txt"
  elif [ -f "$SERVICE/requirements.txt" ]; then
    echo "-r" "$SERVICE/requirements.txt"
    [ "$want_tests" = 1 ] && echo "${test_pips[@]}"
  else
    echo "${worker_pips[@]}"
    [ "$want_tests" = 1 ] && echo "${test_pips[@]}"
  fi
  return 0
}

# index_answers PY: does PY's pip reach a package index that has the worker's packages? (short timeout)
index_answers() {
  local py="$1" pkg
  for pkg in "${worker_pips[@]}"; do
    "$py" -m pip index versions "$pkg" --timeout "$INDEX_TIMEOUT_S" --retries 0 --disable-pip-version-check \
      >/dev/null 2>&1 || return 1
  done
}

# fast_blas PY HOW [look-only]: where the last check found PY on the unoptimized reference BLAS (Debian's libblas3
# when no other BLAS is installed; BlazePose-heavy's landmark model runs 1.03 s a frame there against 0.053 s on
# OpenBLAS), install OpenBLAS with apt, which takes over libblas.so.3 through the alternatives, and check again;
# with look-only (the recorded choice's quick path: no apt-get on every run), or where it cannot, a warning.
# Its OpenMP build shares torch's OpenMP threads; the pthread build runs a pool of its own beside them
# (BlazePose-heavy with 2 threads: 22.4 frames/s against 7.5).
FAST_BLAS_APT=libopenblas0-openmp
fast_blas() {
  grep -q '"reference": true' "$CANDIDATE" 2>/dev/null || return 0
  if [ "${3:-}" != look-only ] && [ "$may_install" = 1 ] && apt_usable && apt_install "$FAST_BLAS_APT"; then
    check "$1" "$2" || die "$1 stopped working after apt-get install $FAST_BLAS_APT: $check_line"
    grep -q '"reference": true' "$CANDIDATE" 2>/dev/null || return 0
  fi
  say "warning: $1 does its matrix products with the reference BLAS (BlazePose 6-17x slower, heavy ~1 s a" \
    "frame); install OpenBLAS (Debian/Ubuntu: apt-get install $FAST_BLAS_APT)"
}

# --- 1. the recorded choice, still good? ------------------------------------------------------------
chosen="" ; chosen_how="" ; tests_missing_in=""
recorded_field() { sed -n "s/^  \"$1\": \"\(.*\)\",\{0,1\}\$/\1/p" "$CHOICE" 2>/dev/null | head -n 1; }

if [ "$force" = 0 ] && [ -f "$CHOICE" ]; then
  recorded="$(recorded_field python)"
  recorded_how="$(recorded_field how)"
  recorded_how="${recorded_how:-found}"
  if [ -n "$recorded" ] && { [ -z "${POSE_PYTHON:-}" ] || [ "$POSE_PYTHON" = "$recorded" ]; } && [ -x "$recorded" ]; then
    rc=0; check "$recorded" "$recorded_how" || rc=$?
    case "$rc" in
      0) fast_blas "$recorded" "$recorded_how" look-only; record "$recorded_how"; exit 0 ;;
      2) chosen="$recorded"; chosen_how="$recorded_how"; tests_missing_in="$check_line" ;;
      *) say "the recorded interpreter no longer works: $check_line; searching again" ;;
    esac
  fi
fi

# --- 2. candidates -----------------------------------------------------------------------------------
consider() { # consider PY HOW
  local py="$1" how="$2" rc=0
  check "$py" "$how" || rc=$?
  if [ "$rc" = 0 ]; then chosen="$py"; chosen_how="$how"; return 0; fi
  if [ "$rc" = 2 ]; then chosen="$py"; chosen_how="$how"; tests_missing_in="$check_line"; return 0; fi
  say "rejected: $check_line"
  rejected+="$py	$check_line"$'\n'
  return 1
}

if [ -z "$chosen" ] && [ -n "${POSE_PYTHON:-}" ]; then
  py="$POSE_PYTHON"
  if ! command -v "$py" >/dev/null 2>&1; then
    die "POSE_PYTHON=$py does not exist. Unset POSE_PYTHON to let the set-up choose, or point it at a Python 3 with: ${worker_modules[*]}"
  fi
  if ! consider "$py" env; then
    die "POSE_PYTHON=$py cannot be used by the workers ($check_line). Unset POSE_PYTHON to let the set-up choose, or install the packages into it: $py -m pip install $(requirement_args)"
  fi
fi

seen=" "
try_candidate() { # try_candidate PY HOW: skips interpreters already tried (same resolved file)
  local py="$1" how="$2" real
  [ -n "$chosen" ] && return 0
  command -v "$py" >/dev/null 2>&1 || return 0
  py="$(command -v "$py")"
  real="$(readlink -f "$py" 2>/dev/null || echo "$py")"
  case "$seen" in *" $real "*) return 0 ;; esac
  seen+="$real "
  consider "$py" "$how" || true
}

try_candidate "$VENV/bin/python" venv
try_candidate python3 path
try_candidate python path
try_candidate /usr/bin/python3 system

# --- 3. make one: a venv with pip, else the distribution's packages ---------------------------------
if [ -z "$chosen" ] && [ "$may_install" = 1 ]; then
  base=""
  for py in "$VENV/bin/python" python3 python /usr/bin/python3; do
    if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then
      base="$(command -v "$py")"; break
    fi
  done
  if [ -n "$base" ]; then
    created=0
    if [ ! -x "$VENV/bin/python" ]; then
      say "creating pose-service/.venv with $base"
      rm -rf "$VENV"
      if "$base" -m venv "$VENV" >&2; then created=1; fi
    fi
    if [ -x "$VENV/bin/python" ]; then
      say "is a package index reachable? (pip, ${INDEX_TIMEOUT_S}s timeout)"
      if index_answers "$VENV/bin/python"; then
        # shellcheck disable=SC2046
        if "$VENV/bin/python" -m pip install --disable-pip-version-check $(requirement_args) >&2; then
          consider "$VENV/bin/python" pip-venv || true
        else
          say "pip install into pose-service/.venv failed"
        fi
      else
        say "no package index answers"
        [ "$created" = 1 ] && rm -rf "$VENV"
      fi
    fi
  fi
fi

if [ -z "$chosen" ] && [ "$may_install" = 1 ]; then
  if apt_usable; then
    pkgs=("${worker_apts[@]}")
    [ "$want_tests" = 1 ] && pkgs+=("${test_apts[@]}")
    apt_install "${pkgs[@]}" || die "apt-get install ${pkgs[*]} failed"
    consider /usr/bin/python3 apt || true
  fi
fi

if [ -z "$chosen" ]; then
  msg="no Python interpreter here can import: ${worker_modules[*]}."$'\n'
  msg+="Tried:"$'\n'"$(printf '%s' "$rejected" | cut -f2 | awk '!seen[$0]++' | sed 's/^/  /')"$'\n'
  msg+="Fix one of these, then run \`npm run setup\` again:"$'\n'
  msg+="  - install the packages into a Python 3.9+: python3 -m pip install $(requirement_args)"$'\n'
  msg+="  - Debian/Ubuntu: sudo apt-get install ${worker_apts[*]}"$'\n'
  msg+="  - or point POSE_PYTHON at an interpreter that has them"
  die "$msg"
fi

# --- 4. the tests' modules for the chosen interpreter ---------------------------------------------------
if [ -n "$tests_missing_in" ]; then
  say "for the tests: $tests_missing_in"
  if [ "$may_install" = 0 ]; then
    : # looking only
  elif [ "$chosen" = "$VENV/bin/python" ] && index_answers "$chosen"; then
    "$chosen" -m pip install --disable-pip-version-check "${test_pips[@]}" >&2 || true
  elif [ "$chosen" = /usr/bin/python3 ] && apt_usable; then
    apt_install "${test_apts[@]}" || true
  fi
  check "$chosen" "$chosen_how" || die "the tests need ${test_modules[*]} in $chosen: install with $chosen -m pip install ${test_pips[*]} (Debian/Ubuntu: apt-get install ${test_apts[*]})"
fi

fast_blas "$chosen" "$chosen_how"
record "$chosen_how"
