"""`worldmodel-plan`: memory, FLOPs and time of a training run and a sampling chunk, on fake tensors."""
from worldmodel.plan.gpus import GPUS, GPU, gpu_named
from worldmodel.plan.run import Plan, plan

__all__ = ["GPU", "GPUS", "Plan", "gpu_named", "plan"]
