#!/usr/bin/env bash
# Retrieval regression gate for CI, in two steps that may run on two machines:
#   run   (a GPU machine, the full install): `linq-eval run` of a retrieval suite into OUTPUT_DIR
#   gate  (any machine, `pip install linq-eval`: no torch): `linq-eval compare` of OUTPUT_DIR
#         with the reference; exit 1 on a regression, with compare.md and report.html written
#
# Usage:  scripts/ci_retrieval_gate.sh [OUTPUT_DIR]          (default: ci-retrieval)
#
# Environment (all optional):
#   MODE          run, gate or all (both, one after the other)    all
#   MODEL         model, hub id or profile to run    Linq-AI-Research/Linq-Embed-Mistral
#   BENCHMARK     benchmark the tasks come from      NanoBEIR (13 BEIR domains, 50 queries each)
#   TASKS         space-separated mteb task names    (empty: every task of BENCHMARK)
#   REFERENCE     result folder (another run's OUTPUT_DIR, e.g. the main branch's) or shipped
#                 baseline (published:<org/model> for MTEB(eng, v1) tasks)     required to gate
#   TOLERANCE     largest allowed drop, points x100   0.5
#   GATE          task, suite or both (compare --gate)  both against a folder, task otherwise
#   REQUIRE_SIGNIFICANT=1  fail a drop only when the paired test gives p < 0.05 (the default
#                 against a folder, whose per-query evidence it needs; 0 to gate on the
#                 tolerance alone)
#   BASELINES     baseline set shown in report.html  published
#   RUN_ARGS      extra arguments for `linq-eval run`     e.g. "--dtype float16"
#   COMPARE_ARGS  extra arguments for `linq-eval compare` e.g. "--allow-drift"
#   SKIP_RUN=1    the same as MODE=gate
#   LINQ_EVAL     the command to call                 linq-eval
#
# Writes OUTPUT_DIR/compare.md (also appended to $GITHUB_STEP_SUMMARY when set) and
# OUTPUT_DIR/report.html. Exit status: that of `linq-eval compare` (0 pass, 1 regression or
# missing task, 2 unusable input or settings drift); a failing `linq-eval run` stops it first.
set -euo pipefail

OUT=${1:-ci-retrieval}
MODE=${MODE:-all}
[[ "${SKIP_RUN:-0}" == 1 ]] && MODE=gate
MODEL=${MODEL:-Linq-AI-Research/Linq-Embed-Mistral}
BENCHMARK=${BENCHMARK:-NanoBEIR}
TOLERANCE=${TOLERANCE:-0.5}
BASELINES=${BASELINES:-published}
read -r -a tasks <<<"${TASKS:-}"
read -r -a run_args <<<"${RUN_ARGS:-}"
read -r -a compare_args <<<"${COMPARE_ARGS:-}"
read -r -a linq_eval <<<"${LINQ_EVAL:-linq-eval}"
selection=(--benchmark "$BENCHMARK")
((${#tasks[@]})) && selection+=(--tasks "${tasks[@]}")

if [[ "$MODE" == run || "$MODE" == all ]]; then
  echo "== linq-eval run: $MODEL on ${TASKS:-$BENCHMARK} -> $OUT" >&2
  "${linq_eval[@]}" run --model "$MODEL" "${selection[@]}" --output "$OUT" \
    ${run_args[@]+"${run_args[@]}"}
  [[ "$MODE" == run ]] && exit 0
fi

if [[ -z "${REFERENCE:-}" ]]; then
  echo "error: set REFERENCE (a run folder to gate against, or published:<org/model>)" >&2
  exit 2
fi
if [[ -d "$REFERENCE" ]]; then  # a run: per-query evidence on both sides
  GATE=${GATE:-both}
  REQUIRE_SIGNIFICANT=${REQUIRE_SIGNIFICANT:-1}
fi
compare_args+=(--gate "${GATE:-task}")
[[ "${REQUIRE_SIGNIFICANT:-0}" == 1 ]] && compare_args+=(--require-significant)
mkdir -p "$OUT"

echo "== linq-eval compare: $OUT vs $REFERENCE (tolerance $TOLERANCE)" >&2
status=0
"${linq_eval[@]}" compare "$OUT" --reference "$REFERENCE" "${selection[@]}" \
  --tolerance "$TOLERANCE" --format markdown --per-query "${compare_args[@]}" \
  >"$OUT/compare.md" || status=$?
cat "$OUT/compare.md"
if [[ -n "${GITHUB_STEP_SUMMARY:-}" ]]; then
  {
    echo "### Retrieval gate: $MODEL on ${TASKS:-$BENCHMARK}"
    cat "$OUT/compare.md"
  } >>"$GITHUB_STEP_SUMMARY"
fi

# The HTML report is for people; it never decides the gate. A reference run is a row of it.
rows=("$OUT")
[[ -d "$REFERENCE" ]] && rows+=("$REFERENCE")
"${linq_eval[@]}" table "${rows[@]}" --baselines "$BASELINES" "${selection[@]}" --per-task \
  --format html --output "$OUT/report.html" || echo "warning: could not write $OUT/report.html" >&2

case $status in
  0) echo "retrieval gate: PASS" >&2 ;;
  1) echo "retrieval gate: FAIL (regression or missing task, see above)" >&2 ;;
  *) echo "retrieval gate: ERROR (unusable input or settings drift, exit $status)" >&2 ;;
esac
exit "$status"
