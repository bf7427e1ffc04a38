"""MaskGWM: an SD3 MMDiT image model turned into a video world model by zero-initialised temporal blocks."""

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.attention import JointTransformerBlock
from diffusers.models.embeddings import CombinedTimestepTextProjEmbeddings, PatchEmbed
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.normalization import AdaLayerNormContinuous
from einops import rearrange, repeat
from torch import nn
from torch.utils.checkpoint import checkpoint

from worldmodel.model.action_embedding import ACTION_GROUP_SIZES, ActionEmbedding
from worldmodel.model.embeddings import FrameTimeEmbedding, TemporalPositionEmbedding
from worldmodel.model.temporal_block import TemporalBlock

# Top-level modules that carry exactly the parameter names of diffusers' SD3Transformer2DModel.
SD3_MODULES = ("pos_embed", "time_text_embed", "context_embedder", "transformer_blocks", "norm_out", "proj_out")


#################################################################################
#                                 MaskGWM Model                                 #
#################################################################################

class MaskGWM(ModelMixin, ConfigMixin):
    """Latent video diffusion transformer: SD3 joint blocks per frame, each followed by a temporal block.

    The defaults are Stable Diffusion 3 medium (24 blocks x 24 heads x 64). Spatial modules use
    the parameter names of `SD3Transformer2DModel`, so SD3 weights load 1:1 with
    `load_sd3_state_dict`. Views are processed independently in this version (`num_views`
    records the camera count that the view blocks of MASKGWM.md section 4 are built for).
    """

    _supports_gradient_checkpointing = True
    _no_split_modules = ["JointTransformerBlock", "TemporalBlock"]
    _skip_layerwise_casting_patterns = ["pos_embed", "norm"]

    @register_to_config
    def __init__(
        self,
        sample_size: int = 128,
        patch_size: int = 2,
        in_channels: int = 16,
        out_channels: int | None = 16,
        num_layers: int = 24,
        attention_head_dim: int = 64,
        num_attention_heads: int = 24,
        joint_attention_dim: int = 4096,
        caption_projection_dim: int = 1536,
        pooled_projection_dim: int = 2048,
        pos_embed_max_size: int = 192,
        qk_norm: str | None = None,
        max_frames: int = 32,
        num_views: int = 1,
        temporal_mlp_ratio: float = 4.0,
        action_fourier_dim: int = 128,
        num_action_scalars: int = 19,
        action_group_sizes: tuple[int, ...] = ACTION_GROUP_SIZES,
        num_null_text_tokens: int = 16,
    ):
        super().__init__()
        self.out_channels = out_channels if out_channels is not None else in_channels
        self.inner_dim = num_attention_heads * attention_head_dim
        if caption_projection_dim != self.inner_dim:
            raise ValueError(f"caption_projection_dim ({caption_projection_dim}) must equal "
                             f"num_attention_heads * attention_head_dim ({self.inner_dim}), as in SD3")
        if sum(action_group_sizes) != num_action_scalars:
            raise ValueError(f"action_group_sizes {tuple(action_group_sizes)} must sum to "
                             f"num_action_scalars={num_action_scalars}")
        if num_views < 1:
            raise ValueError(f"num_views must be >= 1, got {num_views}")

        # Spatial part: SD3Transformer2DModel's modules under its names.
        self.pos_embed = PatchEmbed(
            height=sample_size, width=sample_size, patch_size=patch_size, in_channels=in_channels,
            embed_dim=self.inner_dim, pos_embed_max_size=pos_embed_max_size,
        )
        self.time_text_embed = CombinedTimestepTextProjEmbeddings(
            embedding_dim=self.inner_dim, pooled_projection_dim=pooled_projection_dim)
        self.context_embedder = nn.Linear(joint_attention_dim, caption_projection_dim)
        self.transformer_blocks = nn.ModuleList([
            JointTransformerBlock(
                dim=self.inner_dim, num_attention_heads=num_attention_heads,
                attention_head_dim=attention_head_dim, context_pre_only=i == num_layers - 1, qk_norm=qk_norm,
            )
            for i in range(num_layers)
        ])
        self.norm_out = AdaLayerNormContinuous(self.inner_dim, self.inner_dim, elementwise_affine=False, eps=1e-6)
        self.proj_out = nn.Linear(self.inner_dim, patch_size * patch_size * self.out_channels, bias=True)

        # Video part: ours.
        self.temporal_blocks = nn.ModuleList([
            TemporalBlock(self.inner_dim, num_attention_heads, attention_head_dim,
                          mlp_ratio=temporal_mlp_ratio, qk_norm=qk_norm is not None)
            for _ in range(num_layers)
        ])
        self.temporal_pos_embed = TemporalPositionEmbedding(max_frames, self.inner_dim)
        self.frame_time_embed = FrameTimeEmbedding(self.inner_dim)
        self.action_embedding = ActionEmbedding(self.inner_dim, action_fourier_dim, tuple(action_group_sizes))
        self.null_text = nn.Parameter(torch.empty(num_null_text_tokens, joint_attention_dim))
        self.null_pooled = nn.Parameter(torch.empty(pooled_projection_dim))

        self.gradient_checkpointing = False
        self.initialize_weights()

    def initialize_weights(self):
        """Init of our modules; the SD3 modules keep diffusers' init (or get SD3 weights)."""
        def _basic_init(module):
            if isinstance(module, nn.Linear):
                torch.nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.constant_(module.bias, 0)

        for block in self.temporal_blocks:
            block.apply(_basic_init)
            # adaLN-Zero: every gate is 0, so the video model equals the image model at init.
            nn.init.constant_(block.adaLN_modulation[-1].weight, 0)
            nn.init.constant_(block.adaLN_modulation[-1].bias, 0)
        nn.init.normal_(self.frame_time_embed.mlp[0].weight, std=0.02)
        nn.init.normal_(self.frame_time_embed.mlp[2].weight, std=0.02)
        nn.init.constant_(self.frame_time_embed.mlp[0].bias, 0)
        nn.init.constant_(self.frame_time_embed.mlp[2].bias, 0)
        nn.init.constant_(self.action_embedding.proj.weight, 0)
        # Distinct random null tokens: identical ones would stay identical (no text position embedding).
        nn.init.normal_(self.null_text, std=0.02)
        nn.init.normal_(self.null_pooled, std=0.02)

    # ------------------------------------------------------------------ SD3 weights

    def spatial_state_dict(self) -> dict[str, torch.Tensor]:
        """The SD3-named subset of the state dict (loads into `SD3Transformer2DModel` with strict=True)."""
        return {k: v for k, v in self.state_dict().items() if k.split(".")[0] in SD3_MODULES}

    def load_sd3_state_dict(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Load an `SD3Transformer2DModel` state dict into the spatial modules; every key must match."""
        expected, given = set(self.spatial_state_dict()), set(state_dict)
        if expected != given:
            missing, unexpected = sorted(expected - given), sorted(given - expected)
            raise ValueError(f"SD3 state dict does not match: {len(missing)} missing (e.g. {missing[:3]}), "
                             f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})")
        self.load_state_dict(state_dict, strict=False)

    # ------------------------------------------------------------------ forward

    def forward(
        self,
        latents: torch.Tensor,
        tau: torch.Tensor,
        actions: torch.Tensor | None = None,
        action_valid: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        pooled_projections: torch.Tensor | None = None,
        is_reference: torch.Tensor | None = None,
        mask_plan=None,
    ) -> torch.Tensor:
        """Velocity (eps - z0) of every frame.

        latents (B, T, V, C, H, W), tau (B, T) in [0, 1], actions (B, 19), action_valid (B, 5) bool,
        encoder_hidden_states (B, N, joint_dim), pooled_projections (B, pooled_dim), is_reference (B, T)
        bool -> (B, T, V, C_out, H, W). Missing text uses the learned null text; missing actions equal
        all action groups dropped. Reference frames get m = 0: their diffusion time is 0 in both the
        SD3 time embedding and the temporal modulation, whatever tau says.
        """
        if mask_plan is not None:
            raise ValueError("mask reconstruction (MASKGWM.md section 3) is not implemented in this version "
                             "of MaskGWM: call it with mask_plan=None")
        b, t, v, _, h, w = latents.shape
        p = self.config.patch_size
        if is_reference is None:
            is_reference = torch.zeros(b, t, dtype=torch.bool, device=latents.device)
        tau = torch.where(is_reference, torch.zeros_like(tau), tau)  # (B, T): m * tau

        x, context, temb = self.embed_spatial(latents, tau, encoder_hidden_states, pooled_projections)
        frame_temb = repeat(self.frame_time_embed(tau), "b t d -> (b v) t d", v=v)  # ((B V), T, D)
        action = None
        if actions is not None:
            action = repeat(self.action_embedding(actions, action_valid), "b d -> (b v) d", v=v)  # ((B V), D)

        x = self.forward_blocks(x, context, temb, frame_temb, action, (b, t, v), 0, len(self.transformer_blocks))

        x = self.proj_out(self.norm_out(x, temb))  # ((B T V), N, p*p*C)
        return rearrange(x, "(b t v) (h w) (p q c) -> b t v c (h p) (w q)",
                         b=b, t=t, v=v, h=h // p, w=w // p, p=p, q=p)

    def embed_spatial(self, latents: torch.Tensor, tau: torch.Tensor, encoder_hidden_states: torch.Tensor | None,
                      pooled_projections: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Patchify every frame and build SD3's per-frame conditioning.

        latents (B, T, V, C, H, W), tau (B, T) -> tokens ((B T V), N, D), text ((B T V), M, D), temb ((B T V), D)
        """
        b, t, v, c, h, w = latents.shape
        p = self.config.patch_size
        if c != self.config.in_channels or h % p or w % p:
            raise ValueError(f"latents {tuple(latents.shape)} need {self.config.in_channels} channels and "
                             f"a grid divisible by patch_size={p}")
        if encoder_hidden_states is None:
            encoder_hidden_states = repeat(self.null_text, "n d -> b n d", b=b)  # (B, M, joint_dim)
        if pooled_projections is None:
            pooled_projections = repeat(self.null_pooled, "d -> b d", b=b)  # (B, pooled_dim)

        x = self.pos_embed(rearrange(latents, "b t v c h w -> (b t v) c h w")).contiguous()  # ((B T V), N, D)
        timestep = repeat(tau, "b t -> (b t v)", v=v) * 1000.0  # ((B T V),) like diffusers SD3 pipelines
        temb = self.time_text_embed(timestep, repeat(pooled_projections, "b d -> (b t v) d", t=t, v=v))
        context = repeat(self.context_embedder(encoder_hidden_states), "b m d -> (b t v) m d", t=t, v=v)
        return x, context, temb  # ((B T V), N, D), ((B T V), M, D), ((B T V), D)

    def forward_blocks(self, x: torch.Tensor, context: torch.Tensor | None, temb: torch.Tensor,
                       frame_temb: torch.Tensor, action: torch.Tensor | None, dims: tuple[int, int, int],
                       start: int, end: int) -> torch.Tensor:
        """Run spatial block i then temporal block i for i in [start, end).

        x ((B T V), N, D), context ((B T V), M, D), temb ((B T V), D), frame_temb ((B V), T, D),
        action ((B V), D) or None, dims (B, T, V) -> ((B T V), N, D). Temporal block i cross-attends to
        the text tokens that spatial block i received (the last SD3 block returns no text stream).
        """
        b, t, v = dims
        pos = self.temporal_pos_embed(t)  # (T, D)
        for i in range(start, end):
            block_context = context
            context, x = self._checkpointed(self.transformer_blocks[i], x, block_context, temb)
            xt = rearrange(x, "(b t v) n d -> (b v) n t d", b=b, t=t, v=v)  # ((B V), N, T, D)
            ct = rearrange(block_context, "(b t v) m d -> (b v) t m d", b=b, t=t, v=v)  # ((B V), T, M, D)
            xt = self._checkpointed(self.temporal_blocks[i], xt, ct, action, frame_temb, pos)
            x = rearrange(xt, "(b v) n t d -> (b t v) n d", b=b, t=t, v=v)  # ((B T V), N, D)
        return x

    def _checkpointed(self, module: nn.Module, *args):
        """module(*args), recomputed in the backward pass when gradient checkpointing is on."""
        if self.gradient_checkpointing and torch.is_grad_enabled():
            return checkpoint(module, *args, use_reentrant=False)
        return module(*args)
