#!/bin/bash
# Multi-GPU / multi-node training with torchrun: torchrun starts one process per GPU and sets the
# ranks; Lightning picks them up (TorchElasticEnvironment).
#   one node, 8 GPUs:   scripts/torchrun_train.sh experiment=sd3_stage2_long
#   node k of 2:        NNODES=2 NODE_RANK=k MASTER_ADDR=node0 scripts/torchrun_train.sh trainer=fsdp ...
# All nodes must see the same run_dir (shared file system) so that rank 0's checkpoints and the
# latent cache are readable everywhere. Send SIGTERM (or SIGUSR1) to stop cleanly with a checkpoint;
# rerun with ckpt_path=last to resume.
set -euo pipefail

NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
GPUS=${GPUS:-$(nvidia-smi -L 2>/dev/null | wc -l)}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
MASTER_PORT=${MASTER_PORT:-29500}
RUN_DIR=${RUN_DIR:-outputs/torchrun/$(date +%Y-%m-%d_%H-%M-%S)}

exec torchrun \
  --nnodes "${NNODES}" --node_rank "${NODE_RANK}" --nproc_per_node "${GPUS}" \
  --master_addr "${MASTER_ADDR}" --master_port "${MASTER_PORT}" \
  -m worldmodel.cli.train \
  trainer=${TRAINER:-ddp} trainer.num_nodes="${NNODES}" trainer.devices="${GPUS}" \
  run_dir="${RUN_DIR}" "$@"
