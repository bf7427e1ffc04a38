"""The temporal block that follows every spatial block: attention over frames at a fixed grid position."""

import torch
from einops import rearrange, repeat
from torch import nn

from worldmodel.model.attention import Attention
from worldmodel.model.window_attention import WindowTemporalAttention


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN modulation x * (1 + scale) + shift, broadcast over the leading axes."""
    return x * (1 + scale) + shift


#################################################################################
#                                 Temporal Block                                #
#################################################################################

class TemporalBlock(nn.Module):
    """Frame self-attention, per-frame text cross-attention (actions added to K and V) and an MLP, adaLN-Zero.

    Each sub-layer computes `z + gate * f(LN(z) * (1 + scale) + shift)`, with (shift, scale, gate)
    regressed from the per-frame time embedding of m * tau (m = 0 on reference frames). The
    modulation is zero-initialised, so every gate is 0 and the block is the identity at init; the first
    steps move the gates (their gradient is f's output), and the attention and MLP weights train once
    the gates are no longer 0 (adaLN-Zero, as in DiT).
    The text stream is read, never updated.
    """

    def __init__(self, hidden_size: int, num_heads: int, head_dim: int, mlp_ratio: float = 4.0,
                 qk_norm: bool = False, window: int = 1):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        # window 1 is the paper's attention over frames at one grid position; wider windows see the
        # neighbouring positions of every frame too (see WindowTemporalAttention).
        self.attn = (Attention(hidden_size, num_heads, head_dim, qk_norm=qk_norm) if window == 1 else
                     WindowTemporalAttention(hidden_size, num_heads, head_dim, window, qk_norm=qk_norm))
        self.norm2 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.cross_attn = Attention(hidden_size, num_heads, head_dim, qk_norm=qk_norm)
        self.norm3 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        mlp_hidden = int(hidden_size * mlp_ratio)
        self.mlp = nn.Sequential(
            nn.Linear(hidden_size, mlp_hidden),
            nn.GELU(approximate="tanh"),
            nn.Linear(mlp_hidden, hidden_size),
        )
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 9 * hidden_size))

    def forward(self, x: torch.Tensor, context: torch.Tensor, action: torch.Tensor | None,
                temb: torch.Tensor, pos: torch.Tensor, grid: tuple[int, int] | None = None) -> torch.Tensor:
        """Temporal attention on one clip-view group per row.

        x:       (B, S, T, D) tokens; B = clip x view, S = grid positions, T = frames
        context: (B, T, N, D) text tokens of each frame
        action:  (B, D) projected action embedding, added to K and V of the cross-attention, or None
        temb:    (B, T, D) per-frame time embedding of m * tau
        pos:     (T, D) temporal position embedding
        grid:    (H, W) with H * W = S, needed by a windowed block
        returns  (B, S, T, D)
        """
        b, s, t, _ = x.shape
        mods = self.adaLN_modulation(temb)[:, None]  # (B, 1, T, 9D)
        shift1, scale1, gate1, shift2, scale2, gate2, shift3, scale3, gate3 = mods.chunk(9, dim=-1)

        h = modulate(self.norm1(x), shift1, scale1) + pos  # (B, S, T, D)
        if isinstance(self.attn, WindowTemporalAttention):
            if grid is None:
                raise ValueError("a windowed temporal block needs the token grid (H, W)")
            x = x + gate1 * self.attn(h, grid)
        else:
            h = self.attn(rearrange(h, "b s t d -> (b s) t d"))  # ((B S), T, D)
            x = x + gate1 * rearrange(h, "(b s) t d -> b s t d", b=b)

        h = modulate(self.norm2(x), shift2, scale2)  # (B, S, T, D)
        kv_add = None if action is None else repeat(action, "b d -> (b t) d", t=t)  # ((B T), D)
        h = self.cross_attn(rearrange(h, "b s t d -> (b t) s d"),
                            rearrange(context, "b t n d -> (b t) n d"), kv_add)  # ((B T), S, D)
        x = x + gate2 * rearrange(h, "(b t) s d -> b s t d", b=b)

        h = modulate(self.norm3(x), shift3, scale3)  # (B, S, T, D)
        return x + gate3 * self.mlp(h)  # (B, S, T, D)
