"""The MaskGWM video diffusion transformer and its parts."""

from worldmodel.model.action_embedding import ACTION_GROUP_SIZES, ActionEmbedding
from worldmodel.model.maskgwm import MaskGWM
from worldmodel.model.temporal_block import TemporalBlock

__all__ = ["ACTION_GROUP_SIZES", "ActionEmbedding", "MaskGWM", "TemporalBlock"]
