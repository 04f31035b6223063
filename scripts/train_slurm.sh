#!/usr/bin/env bash
# Slurm example: 2 nodes x 8 GPUs, one torchrun per node (sbatch scripts/train_slurm.sh configs/paper-7b.yaml).
#SBATCH --job-name=longcurate-train
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=32
#SBATCH --time=24:00:00
#SBATCH --output=logs/%x-%j.out
set -euo pipefail
CONFIG=${1:?usage: sbatch $0 CONFIG.yaml [key=value ...]}; shift
HEAD=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
srun torchrun --nnodes "$SLURM_NNODES" --nproc_per_node 8 --rdzv_id "$SLURM_JOB_ID" \
  --rdzv_backend c10d --rdzv_endpoint "$HEAD:29500" \
  -m longcurate train fit -c "$CONFIG" train.deepspeed=configs/ds_zero3.json "$@"
