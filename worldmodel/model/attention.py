"""Multi-head attention shared by the temporal, view and windowed temporal blocks."""

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


#################################################################################
#                                   Attention                                   #
#################################################################################

class Attention(nn.Module):
    """Multi-head (self or cross) attention with optional QK RMS norm and an additive per-sample K/V term."""

    def __init__(self, hidden_size: int, num_heads: int, head_dim: int, qk_norm: bool = False):
        super().__init__()
        self.num_heads = num_heads
        inner = num_heads * head_dim
        self.to_q = nn.Linear(hidden_size, inner)
        self.to_k = nn.Linear(hidden_size, inner)
        self.to_v = nn.Linear(hidden_size, inner)
        self.norm_q = nn.RMSNorm(head_dim, eps=1e-6) if qk_norm else nn.Identity()
        self.norm_k = nn.RMSNorm(head_dim, eps=1e-6) if qk_norm else nn.Identity()
        self.to_out = nn.Linear(inner, hidden_size)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                kv_add: torch.Tensor | None = None, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, L, D), context (B, M, D) or None (self-attention), kv_add (B, H*E) or None -> (B, L, D).

        attn_mask (L, M) bool or None: True where a query may attend to a key (torch SDPA semantics).

        kv_add is added to every key and every value after projection (and after the key norm), as
        MaskGWM adds actions to K and V. One vector added to all keys shifts a query's logits equally,
        so the softmax is unchanged and the conditioning acts through the values.
        """
        context = x if context is None else context
        q = rearrange(self.to_q(x), "b l (h e) -> b h l e", h=self.num_heads)  # (B, H, L, E)
        k = rearrange(self.to_k(context), "b m (h e) -> b h m e", h=self.num_heads)  # (B, H, M, E)
        v = rearrange(self.to_v(context), "b m (h e) -> b h m e", h=self.num_heads)  # (B, H, M, E)
        q, k = self.norm_q(q), self.norm_k(k)
        if kv_add is not None:
            add = rearrange(kv_add, "b (h e) -> b h 1 e", h=self.num_heads)  # (B, H, 1, E)
            k, v = k + add, v + add
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)  # (B, H, L, E)
        return self.to_out(rearrange(out, "b h l e -> b l (h e)"))  # (B, L, D)
