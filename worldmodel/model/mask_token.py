"""The diffusion-related mask token m_tau = (1 - tau) f_m(eps) + tau p of mask reconstruction."""

import torch
from einops import rearrange
from torch import nn


#################################################################################
#                                   Mask Token                                  #
#################################################################################

class MaskToken(nn.Module):
    """Mask tokens from the noise that built z_tau: (1 - tau) f_m(eps) + tau p, f_m a small conv net on the patch grid.

    At low noise the token is mostly an encoding of eps (which, with the visible z_tau around it,
    tells the decoder about the masked latent); at high noise it is mostly the learned token p.
    f_m is a patchify conv (the same footprint as the patch embedding), SiLU, then a 1x1 conv: cheap
    next to a transformer block on the full grid. The positional embedding of each masked position is
    added by the model.
    """

    def __init__(self, in_channels: int, hidden_size: int, patch_size: int):
        super().__init__()
        self.noise_embed = nn.Sequential(
            nn.Conv2d(in_channels, hidden_size, kernel_size=patch_size, stride=patch_size),
            nn.SiLU(),
            nn.Conv2d(hidden_size, hidden_size, kernel_size=1),
        )
        self.token = nn.Parameter(torch.zeros(hidden_size))

    def forward(self, noise: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        """noise (N, C, H, W), tau (N,) -> (N, (H / p) (W / p), D) one mask token per patch position."""
        f = rearrange(self.noise_embed(noise.to(self.token.dtype)), "n d h w -> n (h w) d")  # (N, L, D)
        tau = tau.to(f.dtype)[:, None, None]  # (N, 1, 1)
        return (1 - tau) * f + tau * self.token  # (N, L, D)
