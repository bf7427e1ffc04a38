"""Temporal self-attention that also sees a small spatial window around its grid position in every frame."""

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from worldmodel.model.attention import Attention


def window_offsets(window: int) -> list[tuple[int, int]]:
    """All (row, column) offsets of a window x window square centred on (0, 0), row-major."""
    if window < 1 or window % 2 == 0:
        raise ValueError(f"temporal_window must be an odd number >= 1, got {window}")
    r = window // 2
    return [(di, dj) for di in range(-r, r + 1) for dj in range(-r, r + 1)]


def window_index(grid: tuple[int, int], window: int, device: torch.device | str = "cpu"
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """For every grid position, its window neighbours' flat positions and whether each lies on the grid.

    grid (H, W) -> index (H W, K) long (off-grid neighbours point at position 0), valid (H W, K) bool,
    K = window ** 2 in the order of `window_offsets`.
    """
    h, w = grid
    rows = torch.arange(h, device=device).repeat_interleave(w)  # (H W,)
    cols = torch.arange(w, device=device).repeat(h)  # (H W,)
    offsets = torch.tensor(window_offsets(window), device=device)  # (K, 2)
    nr, nc = rows[:, None] + offsets[:, 0], cols[:, None] + offsets[:, 1]  # (H W, K)
    valid = (nr >= 0) & (nr < h) & (nc >= 0) & (nc < w)
    return torch.where(valid, nr * w + nc, torch.zeros_like(nr)), valid


class WindowTemporalAttention(Attention):
    """Self-attention of a token (frame t, position p) over every frame's tokens in a window around p.

    The paper's temporal attention (window 1) sees only the same position in the other frames, so a
    picture that moves by a token between frames can only be carried over by stacking a temporal and a
    spatial layer. With a window, one layer can fetch the reference's content from where it was: a
    learned embedding of each offset is added to the keys, so a query (which carries the frame index
    and, after the first block, the actions) can pick the offset that its motion asks for. Keys outside
    the grid are masked out. On the packed grid of mask reconstruction's encoder the window spans the
    kept tokens around p (each row keeps its tokens in raster order), the same rule as window 1.
    It reuses `Attention`'s projections and norms (same parameter names); its forward takes the token
    grid instead of a context.
    """

    def __init__(self, hidden_size: int, num_heads: int, head_dim: int, window: int, qk_norm: bool = False):
        super().__init__(hidden_size, num_heads, head_dim, qk_norm=qk_norm)  # the paper's projections and norms
        self.window = window
        self.offset_embed = nn.Parameter(torch.zeros(len(window_offsets(window)), num_heads, head_dim))

    def forward(self, x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """x (B, S, T, D) with S = H * W tokens of an (H, W) grid -> (B, S, T, D)."""
        b, s, t, _ = x.shape
        if grid[0] * grid[1] != s:
            raise ValueError(f"grid {grid} does not hold the {s} positions of x {tuple(x.shape)}")
        index, valid = window_index(grid, self.window, x.device)  # (S, K)
        k_count = index.shape[1]
        q = rearrange(self.to_q(x), "b s t (h e) -> (b s) h t e", h=self.num_heads)  # ((B S), H, T, E)
        k = rearrange(self.to_k(x), "b s t (h e) -> b s h t e", h=self.num_heads)  # (B, S, H, T, E)
        v = rearrange(self.to_v(x), "b s t (h e) -> b s h t e", h=self.num_heads)
        q, k = self.norm_q(q), self.norm_k(k)
        # Every position's window (off-grid neighbours are masked below), then the offset embedding on the keys.
        k = k[:, index] + self.offset_embed[None, None, :, :, None].to(k.dtype)  # (B, S, K, H, T, E)
        k = rearrange(k, "b s k h t e -> (b s) h (k t) e")  # ((B S), H, K T, E)
        v = rearrange(v[:, index], "b s k h t e -> (b s) h (k t) e")
        mask = valid[:, :, None].expand(s, k_count, t).reshape(s, 1, 1, k_count * t)  # (S, 1, 1, K T)
        mask = mask.repeat(b, 1, 1, 1)  # ((B S), 1, 1, K T)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # ((B S), H, T, E)
        return self.to_out(rearrange(out, "(b s) h t e -> b s t (h e)", b=b))  # (B, S, T, D)
