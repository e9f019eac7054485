#!/usr/bin/env bash
# Retrieval regression gate for CI: run a small retrieval suite with `linq-eval run`, then fail
# when any task falls more than TOLERANCE points (x100) below the reference (`linq-eval compare`).
#
# Usage:  scripts/ci_retrieval_gate.sh [OUTPUT_DIR]          (default: ci-retrieval)
#
# Environment (all optional):
#   MODEL         model, hub id or profile to run    Linq-AI-Research/Linq-Embed-Mistral
#   TASKS         space-separated mteb task names     SciFact NFCorpus ArguAna
#   REFERENCE     result folder or shipped baseline   published:Linq-AI-Research/Linq-Embed-Mistral
#   TOLERANCE     largest allowed drop per task       0.5   (points x100)
#   BENCHMARK     benchmark the tasks are taken from  MTEB(eng, v1)
#                 (run, compare and the report: its language subsets and splits)
#   BASELINES     baseline set shown in report.html   published
#   RUN_ARGS      extra arguments for `linq-eval run`     e.g. "--dtype float16"
#   COMPARE_ARGS  extra arguments for `linq-eval compare` e.g. "--allow-drift"
#   REQUIRE_SIGNIFICANT=1  fail a drop only when the paired per-query test gives p < 0.05
#                 (needs a reference run folder with per-query evidence, not a baseline)
#   SKIP_RUN=1    gate an existing OUTPUT_DIR without running the model again
#   LINQ_EVAL     the command to call                 linq-eval
#
# Against today's leaderboard scores: BENCHMARK="MTEB(eng, v2)" BASELINES=published-v2
#   REFERENCE=published-v2:Linq-AI-Research/Linq-Embed-Mistral TASKS="SCIDOCS FEVERHardNegatives".
#
# Writes OUTPUT_DIR/compare.md (also appended to $GITHUB_STEP_SUMMARY when set) and
# OUTPUT_DIR/report.html. Exit status: that of `linq-eval compare` (0 pass, 1 regression or
# missing task, 2 unusable input or settings drift); a failing `linq-eval run` stops it first.
set -euo pipefail

OUT=${1:-ci-retrieval}
MODEL=${MODEL:-Linq-AI-Research/Linq-Embed-Mistral}
TASKS=${TASKS:-SciFact NFCorpus ArguAna}
REFERENCE=${REFERENCE:-published:Linq-AI-Research/Linq-Embed-Mistral}
TOLERANCE=${TOLERANCE:-0.5}
BENCHMARK=${BENCHMARK:-MTEB(eng, v1)}
BASELINES=${BASELINES:-published}
read -r -a tasks <<<"$TASKS"
read -r -a run_args <<<"${RUN_ARGS:-}"
read -r -a compare_args <<<"${COMPARE_ARGS:-}"
if [[ "${REQUIRE_SIGNIFICANT:-0}" == 1 ]]; then compare_args+=(--require-significant); fi
read -r -a linq_eval <<<"${LINQ_EVAL:-linq-eval}"

if [[ "${SKIP_RUN:-0}" != 1 ]]; then
  echo "== linq-eval run: $MODEL on ${tasks[*]} -> $OUT" >&2
  "${linq_eval[@]}" run --model "$MODEL" --benchmark "$BENCHMARK" --tasks "${tasks[@]}" \
    --output "$OUT" ${run_args[@]+"${run_args[@]}"}
fi
mkdir -p "$OUT"

echo "== linq-eval compare: $OUT vs $REFERENCE (tolerance $TOLERANCE)" >&2
status=0
"${linq_eval[@]}" compare "$OUT" --reference "$REFERENCE" --tasks "${tasks[@]}" \
  --tolerance "$TOLERANCE" --benchmark "$BENCHMARK" --format markdown --per-query \
  ${compare_args[@]+"${compare_args[@]}"} \
  >"$OUT/compare.md" || status=$?
cat "$OUT/compare.md"
if [[ -n "${GITHUB_STEP_SUMMARY:-}" ]]; then
  {
    echo "### Retrieval gate: $MODEL"
    cat "$OUT/compare.md"
  } >>"$GITHUB_STEP_SUMMARY"
fi

# The HTML report is for people; it never decides the gate.
"${linq_eval[@]}" table "$OUT" --baselines "$BASELINES" --benchmark "$BENCHMARK" --per-task --format html \
  --output "$OUT/report.html" || echo "warning: could not write $OUT/report.html" >&2

case $status in
  0) echo "retrieval gate: PASS" >&2 ;;
  1) echo "retrieval gate: FAIL (regression or missing task, see above)" >&2 ;;
  *) echo "retrieval gate: ERROR (unusable input or settings drift, exit $status)" >&2 ;;
esac
exit "$status"
