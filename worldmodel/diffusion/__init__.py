"""Rectified-flow objective and flow-matching samplers."""

from worldmodel.diffusion.euler import FlowEulerSampler
from worldmodel.diffusion.rectified_flow import RectifiedFlow

__all__ = ["FlowEulerSampler", "RectifiedFlow"]
