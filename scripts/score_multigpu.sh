#!/usr/bin/env bash
# Score HMG and CAM on many GPUs in one pass: `select score both` runs θ_B once per sample for HMG's NLL
# and CAM's segment attention (plus θ_A and CAM's segment rows), one shard per process, one part file per
# shard and kind, then a merge of each kind.
#
# Each process appends to <outdir>/{hmg,cam}.part-<rank>-of-<world>.jsonl (core.layout.part_path) with fsync
# and skips ids already there, so re-running the same command after a crash resumes. Each part file is
# locked while its process writes it (<part>.lock): a second process on the same part stops at once, naming
# the holder's pid and host; a killed process's lock goes with it. Every process reads the input once as a
# stream, keeps its own samples in a spill file beside its part files and tokenizes them a chunk at a time,
# so a process holds one chunk, not the pool. Under torchrun every rank reads RANK / WORLD_SIZE, and rank 0
# merges both kinds once all ranks pass a barrier (gloo). With explicit --num-shards / --shard-index (a Slurm
# array) nobody merges: the array's merge job runs `longcurate select merge --kind both` at the end (it takes
# KEY=VALUE overrides but no scoring flags).
#
# Usage:
#   scripts/score_multigpu.sh local  INPUT OUTDIR [GPUS]        # one node, torchrun
#   scripts/score_multigpu.sh node   INPUT OUTDIR NNODES GPUS   # run on every node (MASTER_ADDR, NODE_RANK set)
#   scripts/score_multigpu.sh array  INPUT OUTDIR NSHARDS       # submits a Slurm array, then a merge job
# KEY=VALUE overrides go in $SCORE_ARGS (no spaces inside a value), e.g. the paper's setting in a config file
# (select: {model: THUDM/LongAlign-7B-64k-base, model_a: meta-llama/Llama-2-7b-hf, window: null,
# rope_scaling: {rope_type: dynamic, factor: 8.0}, max_segments: 500}):
#   SCORE_ARGS="--config configs/paper-7b.yaml select.batch_tokens=65536"
# A scoring flag such as --window belongs to `select score` only: put it in $SCORE_ARGS as a KEY=VALUE
# (select.window=4096), which `select merge` accepts too.
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
    torchrun --standalone --nproc_per_node "$gpus" -m longcurate select score both \
      --input "$input" --scores-dir "$outdir" $SCORE_ARGS
    ;;
  node)
    nnodes=${1:?number of nodes}; gpus=${2:?GPUs per node}
    : "${MASTER_ADDR:?set MASTER_ADDR to node 0}" "${NODE_RANK:?set NODE_RANK (0..nnodes-1)}"
    torchrun --nnodes "$nnodes" --node_rank "$NODE_RANK" --nproc_per_node "$gpus" \
      --master_addr "$MASTER_ADDR" --master_port "${MASTER_PORT:-29500}" \
      -m longcurate select score both --input "$input" --scores-dir "$outdir" $SCORE_ARGS
    ;;
  array)
    n=${1:?number of shards}
    # One GPU per array task; each task is one shard of both scores, in one pass.
    jid=$(sbatch --parsable --array=0-$((n - 1)) --gres=gpu:1 --job-name=gateau-score --wrap "
      set -e
      longcurate select score both --input '$input' --scores-dir '$outdir' \
        --num-shards $n --shard-index \$SLURM_ARRAY_TASK_ID $SCORE_ARGS")
    sbatch --dependency=afterok:"$jid" --job-name=gateau-merge --wrap "
      set -e
      longcurate select merge --kind both --input '$input' --scores-dir '$outdir' --num-shards $n $SCORE_ARGS"
    ;;
  *)
    echo "unknown mode $mode (local | node | array)" >&2
    exit 2
    ;;
esac
