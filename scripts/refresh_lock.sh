#!/usr/bin/env bash
# Renews the lock `scripts/constraints.txt`: installs the newest releases within pyproject.toml's
# ranges into a fresh virtual environment, runs the README's test command there, and writes the
# new lock only if every test passes, printing what changed.
#
#   bash scripts/refresh_lock.sh            # resolve, test, write if green
#   bash scripts/refresh_lock.sh --no-test  # resolve and print what would change; write nothing
#
# Torch stays at the lock's version (the CPU build; a newer one is a deliberate change of
# scripts/constraints.txt by hand), everything else floats within its range.
set -euo pipefail
cd "$(dirname "$0")/.."
LOCK=scripts/constraints.txt
run_tests=true
[[ "${1:-}" == "--no-test" ]] && run_tests=false
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
# shellcheck disable=SC1091
source "$work/venv/bin/activate"
bash scripts/setup.sh --torch-only -q
bash scripts/setup.sh --unlocked -q
{
  echo "# The lock: exact versions of every package linq-eval and its tests import, for Python"
  echo "# $(python -c 'import platform; print(platform.python_version(), platform.system(), platform.machine())'), written by scripts/refresh_lock.sh on $(date -u +%Y-%m-%d)."
  echo "# scripts/setup.sh installs with it (pip -c); pyproject.toml keeps the compatible ranges."
  # local version labels (+cpu) dropped: the same pin takes the CUDA build on a GPU node
  python -m pip freeze --all --exclude-editable | grep -viE '^(pip|linq-eval)==' | sed 's/+[a-z0-9.]*$//'
} > "$work/constraints.txt"
echo "changes against $LOCK:"
python - "$LOCK" "$work/constraints.txt" <<'PY'
import sys
def pins(path):
    lines = (l.strip() for l in open(path) if l.strip() and not l.startswith("#"))
    return dict(l.split("==", 1) for l in lines)
old, new = pins(sys.argv[1]), pins(sys.argv[2])
changed = [f"  {n}: {old.get(n, '(new)')} -> {new.get(n, '(gone)')}"
           for n in sorted(old.keys() | new.keys()) if old.get(n) != new.get(n)]
print("\n".join(changed) or "  none")
PY
if ! $run_tests; then
  echo "--no-test: nothing written"
  exit 0
fi
if HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 python -m pytest -q; then
  cp "$work/constraints.txt" "$LOCK.tmp" && mv "$LOCK.tmp" "$LOCK"
  echo "tests passed: $LOCK written"
else
  echo "tests failed with the new versions: $LOCK left as it was" >&2
  exit 1
fi
