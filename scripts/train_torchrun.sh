#!/usr/bin/env bash
# Train with torchrun, single node or multi-node (run the same command on every node).
#   single node:  scripts/train_torchrun.sh configs/paper-7b.yaml
#   multi-node:   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 scripts/train_torchrun.sh configs/paper-7b.yaml
# Extra arguments are passed to `longcurate train fit` (e.g. train.deepspeed=configs/ds_zero3.json).
# Mix and tokenize first, in one process: longcurate train mix -c CFG && longcurate train tokenize -c CFG
set -euo pipefail
CONFIG=${1:?usage: $0 CONFIG.yaml [key=value ...]}; shift
NPROC=${NPROC:-$(python -c "import torch; print(max(1, torch.cuda.device_count()))")}
NNODES=${NNODES:-1}
if [ "$NNODES" -gt 1 ]; then
  exec torchrun --nnodes "$NNODES" --node_rank "${NODE_RANK:?set NODE_RANK}" --nproc_per_node "$NPROC" \
    --rdzv_backend c10d --rdzv_endpoint "${MASTER_ADDR:?set MASTER_ADDR}:${MASTER_PORT:-29500}" \
    -m longcurate train fit -c "$CONFIG" "$@"
fi
exec torchrun --standalone --nproc_per_node "$NPROC" -m longcurate train fit -c "$CONFIG" "$@"
