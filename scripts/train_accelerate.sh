#!/usr/bin/env bash
# Train with `accelerate launch` and the FSDP config (configs/fsdp.yaml: set num_processes / num_machines).
#   single node:  scripts/train_accelerate.sh configs/paper-7b.yaml
#   multi-node:   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 NPROC=16 scripts/train_accelerate.sh configs/paper-7b.yaml
set -euo pipefail
CONFIG=${1:?usage: $0 CONFIG.yaml [key=value ...]}; shift
NPROC=${NPROC:-$(python -c "import torch; print(max(1, torch.cuda.device_count()))")}  # total processes
NNODES=${NNODES:-1}
exec accelerate launch --config_file configs/fsdp.yaml --num_processes "$NPROC" --num_machines "$NNODES" \
  --machine_rank "${NODE_RANK:-0}" --main_process_ip "${MASTER_ADDR:-127.0.0.1}" --main_process_port "${MASTER_PORT:-29500}" \
  -m longcurate train fit -c "$CONFIG" train.fsdp_config=configs/fsdp.yaml "$@"
