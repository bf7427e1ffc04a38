"""The MaskGWM video diffusion transformer and its parts."""

from worldmodel.model.action_embedding import ACTION_GROUP_SIZES, ActionEmbedding
from worldmodel.model.mask_token import MaskToken
from worldmodel.model.maskgwm import PARAMETER_GROUPS, MaskGWM
from worldmodel.model.masking import MaskPlan, pack_tokens, sample_mask_plan, unpack_tokens
from worldmodel.model.reconstruction import ReconstructionModule
from worldmodel.model.sd3 import SD3LoadError, build_maskgwm
from worldmodel.model.temporal_block import TemporalBlock
from worldmodel.model.view_block import NUSCENES_VIEW_ORDER, ViewBlock

__all__ = ["ACTION_GROUP_SIZES", "ActionEmbedding", "MaskGWM", "MaskPlan", "MaskToken", "NUSCENES_VIEW_ORDER",
           "PARAMETER_GROUPS", "ReconstructionModule", "SD3LoadError", "TemporalBlock", "ViewBlock",
           "build_maskgwm", "pack_tokens", "sample_mask_plan", "unpack_tokens"]
