#!/usr/bin/env bash
# Throughput benchmark on a lent GPU (H100/H200): one prepared script, nothing from the internet.
#
# 1. Here, once (needs pip's index and ../shared/data):   bash scripts/gpu_bench.sh prepare
#    -> .whl/        mistral-common (the file of Mistral-7B's tokenizer; installed, never
#                    imported), datasets + dill + multiprocess (sentence-transformers imports
#                    datasets, which the GPU image lacks)
#    -> .benchdata/  a copy of SciFact's corpus and queries for the "both" length mix
#    Both folders are ignored by git (.gitignore, .git/info/exclude): they travel only as carry.
# 2. There, through the device tool (about 8 of its 15 minutes, machine start included):
#      run(command="bash scripts/gpu_bench.sh", carry=[".whl", ".benchdata"], timeout_s=600)
#    Steps: environment report; GPU correctness tests (pytest -m gpu tests/test_fast_paths.py);
#    `linq-eval bench --random-init mistral-7b --device cuda --dtype bfloat16` (ours, naive,
#    sentence-transformers) -> $OUT/bench.json; the technique-by-technique ablation ->
#    $OUT/ablation.json. Each step has its own time limit, so a slow step leaves the others'
#    results. The tables are printed last.
# 3. Here, on CPU, the same script end to end with the tiny model:
#      GPU_BENCH_SIZE=tiny GPU_BENCH_DEVICE=cpu GPU_BENCH_DTYPE=float32 bash scripts/gpu_bench.sh
#
# Settings (environment): GPU_BENCH_SIZE (mistral-7b), GPU_BENCH_DEVICE (cuda), GPU_BENCH_DTYPE
# (bfloat16), GPU_BENCH_TEXTS (2000), GPU_BENCH_REPEATS (2), GPU_BENCH_ABLATION_TEXTS (1000),
# GPU_BENCH_STEP_TIMEOUT (seconds per step, 270), OUT (results folder; the device tool sets it).
set -u
cd "$(dirname "$0")/.." || exit 2
REPO=$PWD

if [ "${1:-run}" = "prepare" ]; then
    set -e
    mkdir -p .whl .benchdata/scifact
    grep -qx '/.benchdata/' .git/info/exclude 2>/dev/null || {
        mkdir -p .git/info && echo '/.benchdata/' >> .git/info/exclude
    }
    grep -qx '/.whl/' .gitignore .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d .whl \
        mistral_common==1.13.1 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19
    cp ../shared/data/scifact/corpus.jsonl ../shared/data/scifact/queries.jsonl .benchdata/scifact/
    du -sh .whl .benchdata
    exit 0
fi

SIZE=${GPU_BENCH_SIZE:-mistral-7b}
DEVICE=${GPU_BENCH_DEVICE:-cuda}
DTYPE=${GPU_BENCH_DTYPE:-bfloat16}
N_TEXTS=${GPU_BENCH_TEXTS:-2000}
REPEATS=${GPU_BENCH_REPEATS:-2}
ABLATION_TEXTS=${GPU_BENCH_ABLATION_TEXTS:-1000}
STEP_TIMEOUT=${GPU_BENCH_STEP_TIMEOUT:-270}
OUT=${OUT:-$REPO/out/gpu_bench}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=true

# Carried wheels: install only those whose module is missing here.
SITE=/tmp/linq_eval_site
need=()
for wheel in .whl/*.whl; do
    [ -e "$wheel" ] || continue
    module=$(basename "$wheel" | cut -d- -f1)
    python3 -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('$module') is None)" \
        || need+=("$wheel")
done
if [ ${#need[@]} -gt 0 ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$SITE" "${need[@]}" && export PYTHONPATH=$SITE
fi
export PYTHONPATH=$REPO${PYTHONPATH:+:$PYTHONPATH}
if [ -z "${LINQ_EVAL_SCIFACT:-}" ] && [ -f .benchdata/scifact/corpus.jsonl ]; then
    export LINQ_EVAL_SCIFACT=$REPO/.benchdata/scifact
fi
MIX=both
python3 -c "import sys; from linq_eval.bench.lengthmix import scifact_dir; sys.exit(scifact_dir() is None)" \
    || MIX=synthetic

{
    date -u +%FT%TZ
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version \
        --format=csv,noheader
    python3 -c "import sys, torch, transformers; print('python', sys.version.split()[0], \
'torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__)"
    python3 -c "import sentence_transformers as st; print('sentence-transformers', st.__version__)" \
        2>&1 | tail -1
    echo "size=$SIZE device=$DEVICE dtype=$DTYPE texts=$N_TEXTS repeats=$REPEATS mix=$MIX" \
         "installed=${need[*]:-none}"
} 2>&1 | tee "$OUT/env.txt"

echo "== 1/3 correctness on the GPU (bf16 fast paths vs padded)"
timeout "$STEP_TIMEOUT" python3 -m pytest -q -p no:cacheprovider -m gpu tests/test_fast_paths.py \
    2>&1 | tail -25 | tee "$OUT/gpu_tests.log"

echo "== 2/3 bench: ours vs naive vs sentence-transformers"
timeout "$STEP_TIMEOUT" python3 -m linq_eval.cli bench --random-init "$SIZE" --device "$DEVICE" \
    --dtype "$DTYPE" --n-texts "$N_TEXTS" --repeats "$REPEATS" --mix "$MIX" \
    --json "$OUT/bench.json" > "$OUT/bench.log" 2>&1
bench_rc=$?

echo "== 3/3 ablation: one technique at a time"
timeout "$STEP_TIMEOUT" python3 -m linq_eval.cli bench --ablation --random-init "$SIZE" \
    --device "$DEVICE" --dtype "$DTYPE" --n-texts "$ABLATION_TEXTS" --repeats 1 --mix "$MIX" \
    --json "$OUT/ablation.json" > "$OUT/ablation.log" 2>&1
ablation_rc=$?

echo
echo "== results (exit codes: bench $bench_rc, ablation $ablation_rc; 124 = step timed out)"
cat "$OUT/env.txt"
tail -4 "$OUT/gpu_tests.log"
grep -v -i "warn" "$OUT/bench.log" | tail -12
grep -v -i "warn" "$OUT/ablation.log" | tail -20
exit "$bench_rc"
