#!/usr/bin/env bash
# Train with the deepspeed launcher and ZeRO-3 (GATEAU's setting; ZERO=2 for configs/ds_zero2.json).
#   single node:  scripts/train_deepspeed.sh configs/paper-7b.yaml
#   multi-node:   HOSTFILE=hostfile scripts/train_deepspeed.sh configs/paper-7b.yaml   (hostfile: "node1 slots=8")
set -euo pipefail
CONFIG=${1:?usage: $0 CONFIG.yaml [key=value ...]}; shift
DS=configs/ds_zero${ZERO:-3}.json
if [ -n "${HOSTFILE:-}" ]; then
  exec deepspeed --hostfile "$HOSTFILE" --module longcurate train fit -c "$CONFIG" train.deepspeed="$DS" "$@"
fi
exec deepspeed --num_gpus "${NPROC:-$(python -c "import torch; print(max(1, torch.cuda.device_count()))")}" \
  --module longcurate train fit -c "$CONFIG" train.deepspeed="$DS" "$@"
