"""The reconstruction module F of mask reconstruction: a spatial branch and a temporal branch, one layer each."""

import torch
from diffusers.models.attention import JointTransformerBlock
from einops import rearrange
from torch import nn
from torch.utils.checkpoint import checkpoint

from worldmodel.model.temporal_block import TemporalBlock


#################################################################################
#                             Reconstruction Module                             #
#################################################################################

class ReconstructionModule(nn.Module):
    """F = F_s (an SD3 joint block) for spatially masked clip-views, F_t (a temporal block) for time-masked ones.

    Runs on the full token grid after the mask tokens are put back. Each clip-view takes the output of
    the branch of its mask kind: a spatial mask hides the same tokens in every frame,
    so only the frame's own context can fill them in; a time mask hides different tokens per frame,
    so the other frames at the same position can. The branches share nothing and are zero-initialised
    by the model (every adaLN gate 0), so F is the identity at init. The text stream is read only.
    """

    def __init__(self, hidden_size: int, num_heads: int, head_dim: int, mlp_ratio: float = 4.0,
                 qk_norm: str | None = None, window: int = 1):
        super().__init__()
        self.spatial = JointTransformerBlock(dim=hidden_size, num_attention_heads=num_heads,
                                             attention_head_dim=head_dim, context_pre_only=True, qk_norm=qk_norm)
        self.temporal = TemporalBlock(hidden_size, num_heads, head_dim, mlp_ratio=mlp_ratio,
                                      qk_norm=qk_norm is not None, window=window)
        self.gradient_checkpointing = False

    def _run(self, module: nn.Module, *args):
        if self.gradient_checkpointing and torch.is_grad_enabled():
            return checkpoint(module, *args, use_reentrant=False)
        return module(*args)

    def forward(self, x: torch.Tensor, context: torch.Tensor, temb: torch.Tensor, frame_temb: torch.Tensor,
                action: torch.Tensor | None, pos: torch.Tensor, time_mask: torch.Tensor,
                dims: tuple[int, int, int], grid: tuple[int, int] | None = None) -> torch.Tensor:
        """Route every clip-view through its branch.

        x ((B T V), N, D) full grid, context ((B T V), M, D), temb ((B T V), D), frame_temb ((B V), T, D),
        action ((B V), D) or None, pos (T, D), time_mask (B, V) bool, dims (B, T, V), grid (H, W) of the
        N tokens (needed by a windowed temporal branch) -> ((B T V), N, D).
        """
        b, t, v = dims
        groups = rearrange(x, "(b t v) n d -> (b v) t n d", b=b, t=t, v=v)  # ((B V), T, N, D)
        ctx_groups = rearrange(context, "(b t v) m d -> (b v) t m d", b=b, t=t, v=v)  # ((B V), T, M, D)
        flags = rearrange(time_mask, "b v -> (b v)")[:, None, None, None]  # ((B V), 1, 1, 1)
        # Both branches run on every clip-view and each keeps the output of its own kind. Choosing rows instead
        # would save one layer's work but costs a host sync (nonzero), and a rank whose clips all drew one kind
        # would skip the other branch's gather and reduce while the other ranks wait for it under DDP / FSDP.
        emb = rearrange(temb, "(b t v) d -> (b v) t d", b=b, t=t, v=v)  # ((B V), T, D)
        _, spatial = self._run(self.spatial, rearrange(groups, "g t n d -> (g t) n d"),
                               rearrange(ctx_groups, "g t m d -> (g t) m d"), rearrange(emb, "g t d -> (g t) d"))
        temporal = self._run(self.temporal, rearrange(groups, "g t n d -> g n t d"), ctx_groups, action,
                             frame_temb, pos, grid)  # ((B V), N, T, D)
        out = torch.where(flags, rearrange(temporal, "g n t d -> g t n d"),
                          rearrange(spatial, "(g t) n d -> g t n d", t=t))  # ((B V), T, N, D)
        return rearrange(out, "(b v) t n d -> (b t v) n d", b=b, v=v)  # ((B T V), N, D)

