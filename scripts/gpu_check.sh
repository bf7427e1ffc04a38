#!/usr/bin/env bash
# The prepared GPU check (one call on a lent GPU machine, about 4 minutes on an H200): worldmodel-plan's predictions
# against the GPU (benchmarks/gpu_vs_plan.py), then a 3-step FSDP training run of the quickstart on that GPU, which
# exercises the strategy with the run's fused AdamW. Missing pure-Python packages travel as wheels in .whl/.
#   scripts/gpu_check.sh OUT_DIR
set -u
out=${1:?usage: scripts/gpu_check.sh OUT_DIR}
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1 HYDRA_FULL_ERROR=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch, diffusers, lightning; print('torch', torch.__version__, 'diffusers', diffusers.__version__, 'lightning', lightning.__version__)"
timeout 360 python3 -m benchmarks.gpu_vs_plan measure --out "$out"
echo "gpu_vs_plan rc=$?"
timeout 150 python3 -m worldmodel.cli.train experiment=quickstart_mr trainer=fsdp trainer.accelerator=gpu trainer.devices=1 \
  trainer.max_steps=3 trainer.val_check_interval=3 trainer.limit_val_batches=1 data.batch_size=2 data.num_workers=0 \
  data.train.num_clips=8 data.val.num_clips=2 data.clip.size=[32,64] data.clip.num_frames=4 \
  callbacks.sample_videos.every_n_train_steps=0 run_dir=/tmp/fsdp_run > "$out/fsdp_train.log" 2>&1
echo "fsdp train rc=$?"
grep -E "max_steps=3. reached|Error|error" "$out/fsdp_train.log" | tail -5
ls /tmp/fsdp_run/checkpoints /tmp/fsdp_run/export 2>&1 | head
