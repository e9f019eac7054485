#!/usr/bin/env bash
# The MTEB(eng, v1) suite as a Slurm job array: N jobs, each one node, sharing one output folder.
#
#   mkdir -p logs && sbatch --array=1-4 scripts/slurm_array.sh      # 4 jobs, 8 GPUs each
#   mkdir -p logs && DEVICES=cpu MODEL=all-minilm-l6-v2 TASKS="STS13 STS16" \
#       DATA_DIR=../shared/data/sts OUTPUT=/shared/runs/minilm \
#       sbatch --array=1-2 --gpus-per-node=0 --cpus-per-task=2 scripts/slurm_array.sh
#
# Job i runs `linq-eval run --shard i/N`: the tasks are split by estimated tokens (the job's
# log names its node and devices, then the run names its tasks), every job writes into the
# same OUTPUT, and the finished folder is exactly what one job running everything would have
# written. A job that dies, is cancelled or hits its time limit is resumed by resubmitting its
# index with the array's size: `SHARD_COUNT=N sbatch --array=i scripts/slurm_array.sh` (same
# environment). Finished tasks are skipped and the embedding cache keeps the finished chunks of
# the task it was in.
#
# Environment (all optional):
#   MODEL       profile, hub id or model folder           the run's own (linq-embed-mistral)
#   BENCHMARK   mteb benchmark                            the run's own (MTEB(eng, v1))
#   TASKS       space-separated task names, as the benchmark scores them
#   OUTPUT      result folder, on a file system all nodes share: the run's own (results)
#   CACHE_DIR   embedding cache, shared too so that a resubmitted job resumes: the run's own
#               (inside OUTPUT)
#   DATA_DIR    local task data for --data-dir (one folder per task)
#   DEVICES     GPU indices, or cpu for one CPU process      every GPU nvidia-smi lists
#   SHARD_COUNT number of shards                              the array's size
#   RUN_ARGS    extra arguments for `linq-eval run`, e.g. "--dtype float16"
#
# Compute nodes need no internet: run `linq-eval prefetch --model MODEL` once on a login node
# with the same HF_HOME, then check on a compute node with `linq-eval prefetch --check`.
#
#SBATCH --job-name=linq-eval
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=32
#SBATCH --time=24:00:00
#SBATCH --output=logs/linq-eval-%A_%a.out

set -euo pipefail

SHARD_INDEX=${SLURM_ARRAY_TASK_ID:?submit with sbatch --array=1-N}
SHARD_COUNT=${SHARD_COUNT:-${SLURM_ARRAY_TASK_COUNT:?set SHARD_COUNT to the array size}}
SHARD="${SHARD_INDEX}/${SHARD_COUNT}"
if [[ -z "${DEVICES:-}" ]]; then
  if ! DEVICES=$(nvidia-smi --query-gpu=index --format=csv,noheader 2>/dev/null | tr '\n' ' ') \
      || [[ -z "${DEVICES// /}" ]]; then
    echo "error: no GPU found with nvidia-smi on $(hostname); set DEVICES=cpu for a CPU node" >&2
    exit 2
  fi
fi

common=(--shard "$SHARD")   # variables left unset leave the run's own defaults
[[ -n "${MODEL:-}" ]] && common+=(--model "$MODEL")
[[ -n "${OUTPUT:-}" ]] && common+=(--output "$OUTPUT")
[[ -n "${BENCHMARK:-}" ]] && common+=(--benchmark "$BENCHMARK")
if [[ -n "${TASKS:-}" ]]; then
  read -r -a names <<<"$TASKS"
  common+=(--tasks "${names[@]}")
fi
run_args=()
[[ -n "${CACHE_DIR:-}" ]] && run_args+=(--cache-dir "$CACHE_DIR")
[[ -n "${DATA_DIR:-}" ]] && run_args+=(--data-dir "$DATA_DIR")
if [[ "$DEVICES" == cpu ]]; then
  run_args+=(--device cpu)
  # torch's threads: the CPUs Slurm gave the job (--cpus-per-task), not every core of the node
  if [[ -z "${OMP_NUM_THREADS:-}" && -n "${SLURM_CPUS_PER_TASK:-}" ]]; then
    export OMP_NUM_THREADS=$SLURM_CPUS_PER_TASK
  fi
  threads="CPU threads: ${OMP_NUM_THREADS:-all}"
else   # one process per GPU, each with OMP_NUM_THREADS=1 unless set (as torchrun does)
  threads="CPU threads: ${OMP_NUM_THREADS:-1} per process"
  read -r -a gpus <<<"$DEVICES"
  run_args+=(--devices "${gpus[@]}")
fi
read -r -a extra <<<"${RUN_ARGS:-}"

export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1   # everything comes from the prefetched HF_HOME
echo "linq-eval on $(hostname), devices: ${DEVICES}, ${threads}, shard ${SHARD}"
exec linq-eval run "${common[@]}" "${run_args[@]}" "${extra[@]}" --no-progress
