"""Vista's 19-scalar action interface embedded for the temporal blocks' cross-attention."""

import torch
from torch import nn

from worldmodel.model.embeddings import sinusoidal_features

# command 1, trajectory 8 (4 waypoints x, y), speed 4, steering angle 4, goal point 2.
ACTION_GROUP_SIZES = (1, 8, 4, 4, 2)


#################################################################################
#                               Action Embedding                                #
#################################################################################

class ActionEmbedding(nn.Module):
    """Fourier features of each action scalar, concatenated, through a zero-initialised bias-free Linear.

    A group whose `valid` flag is False (dropped for classifier-free guidance, or missing in the
    dataset) has the features of all its scalars set to exactly zero -- not the features of the value
    0, which are cos = 1. Because the projection has no bias, a sample with every group invalid gets
    the zero embedding, identical to calling the model with no actions at all. Values of invalid
    groups are never read, so NaN placeholders there are safe.
    """

    def __init__(self, hidden_size: int, fourier_dim: int = 128,
                 group_sizes: tuple[int, ...] = ACTION_GROUP_SIZES, max_period: float = 10000.0):
        super().__init__()
        self.fourier_dim = fourier_dim
        self.max_period = max_period
        self.group_sizes = tuple(int(n) for n in group_sizes)
        self.num_scalars = sum(self.group_sizes)
        self.proj = nn.Linear(self.num_scalars * fourier_dim, hidden_size, bias=False)

    def forward(self, actions: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """actions (B, S) float, valid (B, G) bool or None (all valid) -> (B, D)."""
        if actions.shape[-1] != self.num_scalars:
            raise ValueError(f"expected {self.num_scalars} action scalars, got shape {tuple(actions.shape)}")
        if valid is None:
            valid = torch.ones(actions.shape[0], len(self.group_sizes), dtype=torch.bool, device=actions.device)
        # Which group each scalar belongs to, to expand (B, G) flags to (B, S).
        scalar_group = torch.tensor([g for g, n in enumerate(self.group_sizes) for _ in range(n)],
                                    device=actions.device)  # (S,)
        keep = valid.bool()[:, scalar_group]  # (B, S)
        values = torch.where(keep, actions.float(), torch.zeros_like(actions, dtype=torch.float32))
        feats = sinusoidal_features(values, self.fourier_dim, self.max_period)  # (B, S, F)
        feats = torch.where(keep[..., None], feats, torch.zeros_like(feats))  # (B, S, F)
        return self.proj(feats.flatten(1).to(self.proj.weight.dtype))  # (B, D)
