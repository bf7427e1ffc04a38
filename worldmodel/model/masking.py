"""Row-wise mask plans for mask reconstruction (MR): sampling, packing visible tokens, unpacking.

Both of MaskGWM's masks are row-wise here: every row of every frame keeps exactly W - round(r W)
tokens, so the visible tokens of a frame pack into a dense H x (1 - r)W grid and every encoder block
runs without an attention mask ("shifted" attention, docs/METHOD.md section 3).
- time mask: an independent random choice of kept columns for each row of each frame (F_t rebuilds it);
- spatial mask: one random choice per row shared by all frames of the clip-view (F_s rebuilds it).
  The paper's spatial mask is any random mask shared by the frames; making it row-wise too (the same
  number of kept tokens in every row) lets both kinds share one packed layout, so a batch may mix them.
The choice of kind and of columns is independent for every view of a sample.
Reference frames (tau = 0) are masked like the others: every frame must keep the same token count
for the packed temporal attention, and the spatial mask's "same tokens hidden in every frame" must
hold for them too. Their mask tokens are then f_m(eps) (tau = 0), and by default they are outside
the loss anyway.
Kept column indices are sorted within each row, so the packed grid stays in raster order and packed
token j of row h is the j-th visible token of that row in every frame.
"""

from dataclasses import dataclass

import torch
from einops import rearrange, repeat


#################################################################################
#                                   Mask Plan                                   #
#################################################################################

@dataclass(frozen=True)
class MaskPlan:
    """Which tokens each frame keeps, which reconstruction branch each clip-view uses, and the noise eps."""

    keep: torch.Tensor        # (B, T, V, H, Wk) long, sorted kept columns of each token row
    time_mask: torch.Tensor   # (B, V) bool: True = time mask (F_t), False = spatial mask (F_s)
    mask_noise: torch.Tensor  # (B, T, V, C, h, w) the eps that built z_tau, read by the mask token f_m
    grid_width: int           # W, tokens per row before masking

    @property
    def grid(self) -> tuple[int, int]:
        """(H, W) token grid of a frame before masking."""
        return self.keep.shape[3], self.grid_width

    @property
    def kept_width(self) -> int:
        """Wk = W - round(r W) tokens per row after masking."""
        return self.keep.shape[4]

    def to(self, device: torch.device | str) -> "MaskPlan":
        """The same plan on another device."""
        return MaskPlan(self.keep.to(device), self.time_mask.to(device), self.mask_noise.to(device),
                        self.grid_width)

    def token_index(self) -> torch.Tensor:
        """Raster index h * W + keep of every visible token: ((B T V), H * Wk) long."""
        rows = torch.arange(self.keep.shape[3], device=self.keep.device)[:, None] * self.grid_width  # (H, 1)
        return rearrange(self.keep + rows, "b t v h k -> (b t v) (h k)")

    def visible(self) -> torch.Tensor:
        """(B, T, V, H, W) bool, True where a token is kept."""
        b, t, v, h, _ = self.keep.shape
        mask = torch.zeros(b, t, v, h, self.grid_width, dtype=torch.bool, device=self.keep.device)
        return mask.scatter(-1, self.keep, True)


#################################################################################
#                               Plan Sampling                                   #
#################################################################################

def num_dropped(width: int, ratio: float) -> int:
    """Tokens dropped from a row of `width` tokens at mask ratio r: round(r W)."""
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"mask ratio must be in [0, 1), got {ratio}")
    return int(round(ratio * width))


def sample_mask_plan(shape: tuple[int, int, int], grid: tuple[int, int], ratio: float, spatial_prob: float,
                     mask_noise: torch.Tensor, generator: torch.Generator | None = None) -> MaskPlan:
    """A random plan for clips of shape (B, T, V) on an (H, W) token grid.

    Each clip-view gets the spatial mask with probability `spatial_prob`, else the time mask.
    mask_noise (B, T, V, C, h, w) is stored in the plan for the diffusion-related mask token.
    """
    b, t, v = shape
    h, w = grid
    drop = num_dropped(w, ratio)
    if drop >= w:
        raise ValueError(f"mask ratio {ratio} drops every token of a {w}-token row")
    if not 0.0 <= spatial_prob <= 1.0:
        raise ValueError(f"spatial_prob must be in [0, 1], got {spatial_prob}")
    device = mask_noise.device
    time_mask = torch.rand(b, v, generator=generator, device=device) >= spatial_prob  # (B, V)
    scores = torch.rand(b, t, v, h, w, generator=generator, device=device)  # (B, T, V, H, W)
    shared = repeat(scores[:, 0], "b v h w -> b t v h w", t=t)  # one choice for all frames
    scores = torch.where(time_mask[:, None, :, None, None], scores, shared)
    keep = scores.argsort(dim=-1)[..., :w - drop].sort(dim=-1).values  # (B, T, V, H, Wk) raster order
    return MaskPlan(keep=keep, time_mask=time_mask, mask_noise=mask_noise, grid_width=w)


def merge_mask_plans(plans: list[MaskPlan]) -> MaskPlan:
    """Plans of single clips (drawn one per sample) stacked into one plan for their batch."""
    if len({p.grid_width for p in plans}) != 1 or len({p.kept_width for p in plans}) != 1:
        raise ValueError("mask plans of one batch must share the token grid and the mask ratio")
    return MaskPlan(keep=torch.cat([p.keep for p in plans]), time_mask=torch.cat([p.time_mask for p in plans]),
                    mask_noise=torch.cat([p.mask_noise for p in plans]), grid_width=plans[0].grid_width)


#################################################################################
#                              Pack and Unpack                                  #
#################################################################################

def pack_tokens(x: torch.Tensor, plan: MaskPlan) -> torch.Tensor:
    """Visible tokens of each frame in raster order: x ((B T V), H * W, D) -> ((B T V), H * Wk, D)."""
    index = repeat(plan.token_index(), "n k -> n k d", d=x.shape[-1])  # ((B T V), H * Wk, D)
    return x.gather(1, index)


def unpack_tokens(packed: torch.Tensor, fill: torch.Tensor, plan: MaskPlan) -> torch.Tensor:
    """Put packed tokens back at their own positions over `fill` (the mask tokens).

    packed ((B T V), H * Wk, D), fill ((B T V), H * W, D) -> ((B T V), H * W, D)
    """
    index = repeat(plan.token_index(), "n k -> n k d", d=packed.shape[-1])  # ((B T V), H * Wk, D)
    return fill.scatter(1, index, packed)
