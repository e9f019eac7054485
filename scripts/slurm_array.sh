#!/usr/bin/env bash
# The MTEB(eng, v1) suite as a Slurm job array: N jobs, each one node, sharing one output folder.
#
#   sbatch --array=1-4 scripts/slurm_array.sh                # 4 jobs, 8 GPUs each
#   MODEL=all-minilm-l6-v2 OUTPUT=/shared/runs/minilm sbatch --array=1-2 scripts/slurm_array.sh
#
# Job i runs `linq-eval run --shard i/N`: the tasks are split by estimated tokens (linq-eval plan
# --shard i/N shows a job's share), every job writes into the same OUTPUT, and the finished folder
# is exactly what one job running everything would have written. A job that dies or hits its time
# limit is resumed by resubmitting the same array index: finished tasks are skipped and the
# embedding cache keeps the finished chunks of the task it was in.
#
# Compute nodes need no internet: run `linq-eval prefetch --model "$MODEL"` once on a login node
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

MODEL=${MODEL:-linq-embed-mistral}
BENCHMARK=${BENCHMARK:-"MTEB(eng, v1)"}
OUTPUT=${OUTPUT:-results}                       # on a file system all nodes share
CACHE_DIR=${CACHE_DIR:-"$OUTPUT/embeddings"}    # shared too, so a resubmitted job resumes
SHARD_INDEX=${SLURM_ARRAY_TASK_ID:?submit with sbatch --array=1-N}
SHARD_COUNT=${SHARD_COUNT:-${SLURM_ARRAY_TASK_COUNT:?set SHARD_COUNT to the array size}}
GPUS=${GPUS:-$(nvidia-smi --query-gpu=index --format=csv,noheader | tr '\n' ' ')}

export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1   # everything comes from the prefetched HF_HOME

echo "shard ${SHARD_INDEX}/${SHARD_COUNT} of ${BENCHMARK} on $(hostname), GPUs: ${GPUS}"
linq-eval plan --model "$MODEL" --benchmark "$BENCHMARK" --output "$OUTPUT" \
    --shard "${SHARD_INDEX}/${SHARD_COUNT}"

# shellcheck disable=SC2086  # GPUS is a list of indices
exec linq-eval run --model "$MODEL" --benchmark "$BENCHMARK" --output "$OUTPUT" \
    --cache-dir "$CACHE_DIR" --shard "${SHARD_INDEX}/${SHARD_COUNT}" --devices $GPUS --no-progress
