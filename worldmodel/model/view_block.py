"""The cross-view block of MaskGWM-mview: row-wise attention across the cameras of one frame."""

import torch
from einops import rearrange, repeat
from torch import nn

from worldmodel.model.attention import Attention
from worldmodel.model.temporal_block import modulate

# nuScenes camera ring in the order the view blocks expect (docs/METHOD.md section 4).
NUSCENES_VIEW_ORDER = ("CAM_FRONT_LEFT", "CAM_FRONT", "CAM_FRONT_RIGHT", "CAM_BACK_RIGHT", "CAM_BACK", "CAM_BACK_LEFT")


def ring_adjacency(num_views: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(V, V) bool: view i sees itself and its two neighbours on the camera ring (views in ring order)."""
    idx = torch.arange(num_views, device=device)
    dist = (idx[:, None] - idx[None, :]).abs()  # (V, V)
    return torch.minimum(dist, num_views - dist) <= 1


#################################################################################
#                                   View Block                                  #
#################################################################################

class ViewBlock(nn.Module):
    """Self-attention over the tokens of one token row in all views, then an MLP; adaLN-Zero on frame time.

    A row of a frame holds W tokens per view (W = (1 - r) W_full on the packed grid of mask
    reconstruction); the block attends over the V * W tokens of that row with a learned view-index
    embedding added to the attention input. With `ring_mask` a view attends only to itself and
    its two ring neighbours. The modulation is zero-initialised by the model, so the block is the
    identity at init. The text stream is not touched.
    """

    def __init__(self, hidden_size: int, num_heads: int, head_dim: int, num_views: int, mlp_ratio: float = 4.0,
                 qk_norm: bool = False, ring_mask: bool = False):
        super().__init__()
        self.num_views = num_views
        self.ring_mask = ring_mask
        self.view_embed = nn.Parameter(torch.zeros(num_views, hidden_size))
        self.norm1 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(hidden_size, num_heads, head_dim, qk_norm=qk_norm)
        self.norm2 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        mlp_hidden = int(hidden_size * mlp_ratio)
        self.mlp = nn.Sequential(
            nn.Linear(hidden_size, mlp_hidden),
            nn.GELU(approximate="tanh"),
            nn.Linear(mlp_hidden, hidden_size),
        )
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 6 * hidden_size))

    def attention_mask(self, width: int, device: torch.device | str) -> torch.Tensor | None:
        """((V W), (V W)) bool ring mask over the tokens of a row, or None for full cross-view attention."""
        if not self.ring_mask:
            return None
        return repeat(ring_adjacency(self.num_views, device), "i j -> (i a) (j c)", a=width, c=width)

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        """x (G, V, W, D) one token row of every view, G = (B T H) rows; temb (G, D) frame time -> (G, V, W, D)."""
        g, v, w, _ = x.shape
        if v != self.num_views:
            raise ValueError(f"view block built for {self.num_views} views got {v}")
        shift1, scale1, gate1, shift2, scale2, gate2 = self.adaLN_modulation(temb)[:, None, None].chunk(6, dim=-1)

        h = modulate(self.norm1(x), shift1, scale1) + self.view_embed[:, None]  # (G, V, W, D)
        h = self.attn(rearrange(h, "g v w d -> g (v w) d"), attn_mask=self.attention_mask(w, x.device))
        x = x + gate1 * rearrange(h, "g (v w) d -> g v w d", v=v)  # (G, V, W, D)

        h = modulate(self.norm2(x), shift2, scale2)  # (G, V, W, D)
        return x + gate2 * self.mlp(h)  # (G, V, W, D)
