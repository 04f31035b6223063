#!/usr/bin/env bash
# Score HMG and CAM on many GPUs: one shard per process, one part file per shard, then a merge.
#
# Each process appends to <output stem>.part-<rank>-of-<world>.jsonl (core.layout.part_path) with fsync and skips ids already
# there, so re-running the same command after a crash resumes. Each part file is locked while its process
# writes it (<part>.lock): a second process on the same part stops at once, naming the holder's pid and
# host; a killed process's lock goes with it. Under torchrun every rank reads RANK / WORLD_SIZE, and rank 0
# merges once all ranks pass a barrier (gloo). With explicit --num-shards / --shard-index (a Slurm array)
# nobody merges: run `longcurate select merge` at the end (it takes KEY=VALUE overrides but no scoring flags).
#
# Usage:
#   scripts/score_multigpu.sh local  INPUT OUTDIR [GPUS]        # one node, torchrun
#   scripts/score_multigpu.sh node   INPUT OUTDIR NNODES GPUS   # run on every node (MASTER_ADDR, NODE_RANK set)
#   scripts/score_multigpu.sh array  INPUT OUTDIR NSHARDS       # submits a Slurm array, then a merge job
# KEY=VALUE overrides go in $SCORE_ARGS (no spaces inside a value; flags such as --window are refused by the
# commands that do not read them, `score cam` and `merge`), e.g. the paper's setting
# in a config file (select: {model: THUDM/LongAlign-7B-64k-base, model_a: meta-llama/Llama-2-7b-hf,
# window: null, rope_scaling: {rope_type: dynamic, factor: 8.0}, max_segments: 500}):
#   SCORE_ARGS="--config configs/paper-7b.yaml select.batch_tokens=65536"
set -euo pipefail

mode=${1:?mode: local | node | array}
input=${2:?input JSONL}
outdir=${3:?output folder}
shift 3
mkdir -p "$outdir"
SCORE_ARGS=${SCORE_ARGS:-}

case "$mode" in
  local)
    gpus=${1:-$(nvidia-smi -L 2>/dev/null | wc -l)}
    for kind in hmg cam; do
      torchrun --standalone --nproc_per_node "$gpus" -m longcurate select score "$kind" \
        --input "$input" --output "$outdir/$kind.jsonl" $SCORE_ARGS
    done
    ;;
  node)
    nnodes=${1:?number of nodes}; gpus=${2:?GPUs per node}
    : "${MASTER_ADDR:?set MASTER_ADDR to node 0}" "${NODE_RANK:?set NODE_RANK (0..nnodes-1)}"
    for kind in hmg cam; do
      torchrun --nnodes "$nnodes" --node_rank "$NODE_RANK" --nproc_per_node "$gpus" \
        --master_addr "$MASTER_ADDR" --master_port "${MASTER_PORT:-29500}" \
        -m longcurate select score "$kind" --input "$input" --output "$outdir/$kind.jsonl" $SCORE_ARGS
    done
    ;;
  array)
    n=${1:?number of shards}
    # One GPU per array task; each task is one shard of both scores.
    jid=$(sbatch --parsable --array=0-$((n - 1)) --gres=gpu:1 --job-name=gateau-score --wrap "
      set -e
      for kind in hmg cam; do
        longcurate select score \$kind --input '$input' --output '$outdir/'\$kind.jsonl \
          --num-shards $n --shard-index \$SLURM_ARRAY_TASK_ID $SCORE_ARGS
      done")
    sbatch --dependency=afterok:"$jid" --job-name=gateau-merge --wrap "
      set -e
      for kind in hmg cam; do
        longcurate select merge --kind \$kind --input '$input' --output '$outdir/'\$kind.jsonl --num-shards $n $SCORE_ARGS
      done"
    ;;
  *)
    echo "unknown mode $mode (local | node | array)" >&2
    exit 2
    ;;
esac
