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

from worldmodel.diffusion.prediction import PREDICTIONS
from worldmodel.model.action_embedding import ACTION_GROUP_SIZES, ActionEmbedding
from worldmodel.model.embeddings import FrameTimeEmbedding, TemporalPositionEmbedding
from worldmodel.model.mask_token import MaskToken
from worldmodel.model.masking import MaskPlan, pack_tokens, unpack_tokens
from worldmodel.model.reconstruction import ReconstructionModule
from worldmodel.model.temporal_block import TemporalBlock
from worldmodel.model.view_block import ViewBlock

# Top-level modules that carry exactly the parameter names of diffusers' SD3Transformer2DModel.
SD3_MODULES = ("pos_embed", "time_text_embed", "context_embedder", "transformer_blocks", "norm_out", "proj_out")
# Every top-level module or parameter by the part of the method it belongs to (parameter tables).
PARAMETER_GROUPS = {
    "spatial": SD3_MODULES,
    "temporal": ("temporal_blocks", "temporal_pos_embed", "frame_time_embed"),
    "view": ("view_blocks",),
    "mr": ("mask_token", "reconstruction"),
    "action": ("action_embedding",),
    "warp": ("warp_embed",),
    "null_text": ("null_text", "null_pooled"),
}


#################################################################################
#                                 MaskGWM Model                                 #
#################################################################################

class MaskGWM(ModelMixin, ConfigMixin):
    """Latent video diffusion transformer: SD3 joint blocks per frame, each followed by view and temporal blocks.

    The defaults are Stable Diffusion 3 medium (24 blocks x 24 heads x 64). Spatial modules use
    the parameter names of `SD3Transformer2DModel`, so SD3 weights load 1:1 with
    `load_sd3_state_dict` (or `worldmodel.model.build_maskgwm(pretrained_sd3=folder)`).
    Block i runs spatial block i, then view block i (when `use_view_blocks`; otherwise views are
    independent), then temporal block i. With `mask_reconstruction`, a training forward given a
    `MaskPlan` runs the first `num_layers - mr_decoder_layers` blocks (the encoder) on the packed
    visible tokens, puts mask tokens back, runs the reconstruction module F, then the decoder blocks.
    """

    _supports_gradient_checkpointing = True
    _no_split_modules = ["JointTransformerBlock", "TemporalBlock", "ViewBlock", "ReconstructionModule"]
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
        temporal_window: int = 1,
        action_fourier_dim: int = 128,
        num_action_scalars: int = 19,
        action_group_sizes: tuple[int, ...] = ACTION_GROUP_SIZES,
        num_null_text_tokens: int = 16,
        use_view_blocks: bool = False,
        view_ring_mask: bool = False,
        mask_reconstruction: bool = False,
        mr_decoder_layers: int | None = None,
        prediction: str = "velocity",
        sigma_data: float = 0.5,
        warp_condition: bool = False,
        warp_residual: bool = False,
    ):
        super().__init__()
        # Hydra hands over a ListConfig; store plain ints so the config saves as JSON.
        action_group_sizes = [int(n) for n in action_group_sizes]
        self.register_to_config(action_group_sizes=action_group_sizes)
        self.out_channels = out_channels if out_channels is not None else in_channels
        self.inner_dim = num_attention_heads * attention_head_dim
        if caption_projection_dim != self.inner_dim:
            raise ValueError(f"caption_projection_dim ({caption_projection_dim}) must equal "
                             f"num_attention_heads * attention_head_dim ({self.inner_dim}), as in SD3")
        if sum(action_group_sizes) != num_action_scalars:
            raise ValueError(f"action_group_sizes {tuple(action_group_sizes)} must sum to "
                             f"num_action_scalars={num_action_scalars}")
        if prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")
        if sigma_data <= 0:
            raise ValueError(f"sigma_data (the latents' spread, for prediction=preconditioned) must be > 0, "
                             f"got {sigma_data}")
        if num_views < 1:
            raise ValueError(f"num_views must be >= 1, got {num_views}")
        if warp_residual and not (warp_condition and prediction == "sample"):
            raise ValueError("warp_residual adds each frame's warp to the clean-frame output: it needs "
                             f"warp_condition=true and prediction=sample, got warp_condition={warp_condition} and "
                             f"prediction={prediction!r}")
        if mr_decoder_layers is None:
            mr_decoder_layers = max(1, round(num_layers * 5 / 24))  # the paper's 5 of 24, scaled
        if mask_reconstruction:
            if not 1 <= mr_decoder_layers < num_layers:
                raise ValueError(f"mr_decoder_layers must be in [1, num_layers - 1] = [1, {num_layers - 1}] "
                                 f"with mask_reconstruction, got {mr_decoder_layers}")
            if pos_embed_max_size is None:
                raise ValueError("mask_reconstruction needs pos_embed_max_size (mask tokens take cropped SD3 "
                                 "position embeddings)")
        self.register_to_config(mr_decoder_layers=mr_decoder_layers)
        self.num_encoder_layers = num_layers - mr_decoder_layers

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
                          mlp_ratio=temporal_mlp_ratio, qk_norm=qk_norm is not None, window=temporal_window)
            for _ in range(num_layers)
        ])
        self.view_blocks = nn.ModuleList([
            ViewBlock(self.inner_dim, num_attention_heads, attention_head_dim, num_views,
                      mlp_ratio=temporal_mlp_ratio, qk_norm=qk_norm is not None, ring_mask=view_ring_mask)
            for _ in range(num_layers)
        ]) if use_view_blocks else None
        self.mask_token = MaskToken(in_channels, self.inner_dim, patch_size) if mask_reconstruction else None
        self.reconstruction = ReconstructionModule(
            self.inner_dim, num_attention_heads, attention_head_dim, mlp_ratio=temporal_mlp_ratio,
            qk_norm=qk_norm, window=temporal_window) if mask_reconstruction else None
        self.temporal_pos_embed = TemporalPositionEmbedding(max_frames, self.inner_dim)
        self.frame_time_embed = FrameTimeEmbedding(self.inner_dim)
        self.action_embedding = ActionEmbedding(self.inner_dim, action_fourier_dim, tuple(action_group_sizes))
        # Our extension, off in the paper's presets: the last reference frame moved along the commanded path,
        # patchified like the latents and added to each new frame's tokens (see `embed_warp`).
        self.warp_embed = nn.Conv2d(in_channels, self.inner_dim, patch_size, stride=patch_size) if warp_condition \
            else None
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

        # adaLN-Zero: every gate is 0, so the video model equals the image model at init, and
        # view blocks and the reconstruction module F start as the identity.
        zero_init = list(self.temporal_blocks) + list(self.view_blocks or [])
        if self.reconstruction is not None:
            zero_init.append(self.reconstruction.temporal)
        for block in zero_init:
            block.apply(_basic_init)
            nn.init.constant_(block.adaLN_modulation[-1].weight, 0)
            nn.init.constant_(block.adaLN_modulation[-1].bias, 0)
        for block in self.view_blocks or []:
            nn.init.normal_(block.view_embed, std=0.02)
        if self.reconstruction is not None:
            # F_s keeps diffusers' init of an SD3 block except its adaLN-Zero modulation.
            nn.init.constant_(self.reconstruction.spatial.norm1.linear.weight, 0)
            nn.init.constant_(self.reconstruction.spatial.norm1.linear.bias, 0)
        if self.mask_token is not None:
            nn.init.normal_(self.mask_token.token, std=0.02)
        nn.init.normal_(self.frame_time_embed.mlp[0].weight, std=0.02)
        nn.init.normal_(self.frame_time_embed.mlp[2].weight, std=0.02)
        nn.init.constant_(self.frame_time_embed.mlp[0].bias, 0)
        nn.init.constant_(self.frame_time_embed.mlp[2].bias, 0)
        nn.init.constant_(self.action_embedding.proj.weight, 0)
        if self.warp_embed is not None:
            # Zero like the temporal gates: with or without the warp, the model starts as the image model.
            nn.init.constant_(self.warp_embed.weight, 0)
            nn.init.constant_(self.warp_embed.bias, 0)
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
        mask_plan: MaskPlan | None = None,
        warp: torch.Tensor | None = None,
        warp_valid: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Every frame's output: the velocity eps - z0, or the clean frame, as `prediction` says.

        latents (B, T, V, C, H, W), tau (B, T) in [0, 1], actions (B, 19), action_valid (B, 5) bool,
        encoder_hidden_states (B, N, joint_dim), pooled_projections (B, pooled_dim), is_reference (B, T)
        bool, mask_plan a `MaskPlan` (training only) or None -> (B, T, V, C_out, H, W). Missing text uses
        the learned null text; missing actions equal all action groups dropped. Reference frames get
        m = 0: their diffusion time is 0 in both the SD3 time embedding and the temporal modulation,
        whatever tau says. With a mask plan, every frame (reference frames too) is masked, and every
        token, masked or not, is predicted.
        warp (B, T, V, C, H, W) and warp_valid (B, T) bool, only for a model built with `warp_condition`: each
        frame's first guess in latent space (the last reference frame re-rendered at that frame's commanded pose,
        `worldmodel.rollout.warp_start`); frames where warp_valid is False, and every frame when warp is None,
        get no warp. With `warp_residual`, the warp of those frames is also added to their output (`add_warp`).
        """
        b, t, v, _, h, w = latents.shape
        p = self.config.patch_size
        grid = (h // p, w // p)
        if mask_plan is not None:
            self._check_mask_plan(mask_plan, latents)
        if self.view_blocks is not None and v != self.config.num_views:
            raise ValueError(f"this model's view blocks are built for {self.config.num_views} views, "
                             f"got latents with {v}")
        if is_reference is None:
            is_reference = torch.zeros(b, t, dtype=torch.bool, device=latents.device)
        tau = tau.float()  # float32 time even under bf16: 1000 * tau needs the precision
        tau = torch.where(is_reference.bool(), torch.zeros_like(tau), tau)  # (B, T): m * tau

        x, context, temb = self.embed_spatial(latents, tau, encoder_hidden_states, pooled_projections)
        if warp is not None or warp_valid is not None:
            x = x + self.embed_warp(warp, warp_valid, latents.shape)
        frame_temb = self.frame_time_embed(tau)  # (B, T, D)
        action = None
        if actions is not None:
            action = repeat(self.action_embedding(actions, action_valid), "b d -> (b v) d", v=v)  # ((B V), D)

        if mask_plan is None:
            x, _ = self.forward_blocks(x, context, temb, frame_temb, action, (b, t, v), grid,
                                       0, len(self.transformer_blocks))
        else:
            x, context = self.forward_encoder(x, context, temb, frame_temb, action, (b, t, v), mask_plan)
            x = self.forward_reconstruction(x, context, temb, frame_temb, action, tau, (b, t, v), mask_plan)
            x, _ = self.forward_blocks(x, context, temb, frame_temb, action, (b, t, v), grid,
                                       self.num_encoder_layers, len(self.transformer_blocks))

        x = self.proj_out(self.norm_out(x, temb))  # ((B T V), N, p*p*C)
        out = rearrange(x, "(b t v) (h w) (p q c) -> b t v c (h p) (w q)",
                        b=b, t=t, v=v, h=grid[0], w=grid[1], p=p, q=p)
        if self.config.warp_residual and warp is not None:
            out = self.add_warp(out, warp, warp_valid)
        return out

    @staticmethod
    def add_warp(out: torch.Tensor, warp: torch.Tensor, warp_valid: torch.Tensor) -> torch.Tensor:
        """Clean-frame outputs (B, T, V, C, H, W) plus the warp (same shape) of frames where warp_valid (B, T).

        `warp_residual`: the network then draws only what the warp gets wrong. A small network copies fine detail
        poorly and passes the noise of nearly clean inputs through (the grain of docs/FINDINGS.md, "Where the warp
        start's grain comes from"); with the warp as the base of its answer, detail the warp carries needs no
        copying, and where the warp is right the best answer is a zero residual, whatever the noise.
        """
        keep = warp_valid.bool()[(...,) + (None,) * 4]  # (B, T, 1, 1, 1, 1)
        return out + torch.where(keep, warp.to(out.dtype), torch.zeros((), dtype=out.dtype, device=out.device))

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

    def embed_warp(self, warp: torch.Tensor | None, warp_valid: torch.Tensor | None,
                   shape: torch.Size) -> torch.Tensor:
        """warp (B, T, V, C, H, W), warp_valid (B, T) bool -> tokens to add ((B T V), N, D), zero where invalid.

        Zero rather than a learned "no warp" token: a frame without a warp is then exactly a frame of a model
        without the condition, so clips without calibration train and sample as before.
        """
        if self.warp_embed is None:
            raise ValueError("this model was built without warp_condition: it takes no warp (build it with "
                             "warp_condition=true, or leave warp out)")
        b, t, v = shape[:3]
        if warp is None or warp_valid is None or tuple(warp.shape) != tuple(shape) or \
                tuple(warp_valid.shape) != (b, t):
            raise ValueError(f"warp {None if warp is None else tuple(warp.shape)} and warp_valid "
                             f"{None if warp_valid is None else tuple(warp_valid.shape)} must come together, shaped "
                             f"like the latents {tuple(shape)} and (B, T) = {(b, t)}")
        tokens = self.warp_embed(rearrange(warp, "b t v c h w -> (b t v) c h w").to(self.warp_embed.weight.dtype))
        tokens = rearrange(tokens, "n d h w -> n (h w) d")  # ((B T V), N, D)
        keep = repeat(warp_valid.bool(), "b t -> (b t v) 1 1", v=v)
        return torch.where(keep, tokens, torch.zeros_like(tokens))

    def forward_blocks(self, x: torch.Tensor, context: torch.Tensor | None, temb: torch.Tensor,
                       frame_temb: torch.Tensor, action: torch.Tensor | None, dims: tuple[int, int, int],
                       grid: tuple[int, int], start: int, end: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Run spatial block i, view block i (if any), then temporal block i for i in [start, end).

        x ((B T V), H W, D) on an (H, W) token grid (packed or full), context ((B T V), M, D),
        temb ((B T V), D), frame_temb (B, T, D), action ((B V), D) or None, dims (B, T, V)
        -> (x ((B T V), H W, D), context after block end - 1). Temporal block i cross-attends to the
        text tokens that spatial block i received (the last SD3 block returns no text stream).
        No block needs an attention mask on the packed grid: the view block attends along a token row
        of every view and the temporal block along the frames of one (packed) grid position.
        """
        b, t, v = dims
        pos = self.temporal_pos_embed(t, x.device).to(x.dtype)  # (T, D)
        temporal_temb = repeat(frame_temb, "b t d -> (b v) t d", v=v)  # ((B V), T, D)
        view_temb = repeat(frame_temb, "b t d -> (b t h) d", h=grid[0])  # ((B T H), D)
        for i in range(start, end):
            block_context = context
            context, x = self._checkpointed(self.transformer_blocks[i], x, block_context, temb)
            if self.view_blocks is not None:
                xv = rearrange(x, "(b t v) (h w) d -> (b t h) v w d", b=b, t=t, v=v, h=grid[0])  # ((B T H), V, W, D)
                xv = self._checkpointed(self.view_blocks[i], xv, view_temb)
                x = rearrange(xv, "(b t h) v w d -> (b t v) (h w) d", b=b, t=t, h=grid[0])  # ((B T V), N, D)
            xt = rearrange(x, "(b t v) n d -> (b v) n t d", b=b, t=t, v=v)  # ((B V), N, T, D)
            ct = rearrange(block_context, "(b t v) m d -> (b v) t m d", b=b, t=t, v=v)  # ((B V), T, M, D)
            xt = self._checkpointed(self.temporal_blocks[i], xt, ct, action, temporal_temb, pos, grid)
            x = rearrange(xt, "(b v) n t d -> (b t v) n d", b=b, t=t, v=v)  # ((B T V), N, D)
        return x, context

    # ------------------------------------------------------------------ mask reconstruction

    def forward_encoder(self, x: torch.Tensor, context: torch.Tensor, temb: torch.Tensor, frame_temb: torch.Tensor,
                        action: torch.Tensor | None, dims: tuple[int, int, int],
                        plan: MaskPlan) -> tuple[torch.Tensor, torch.Tensor]:
        """E: drop the masked tokens (each kept token keeps its own position embedding) and run the encoder blocks.

        x ((B T V), H W, D) -> (packed ((B T V), H Wk, D), text stream ((B T V), M, D) for the decoder)
        """
        x = pack_tokens(x, plan)  # ((B T V), H * Wk, D) raster order
        return self.forward_blocks(x, context, temb, frame_temb, action, dims, (plan.grid[0], plan.kept_width),
                                   0, self.num_encoder_layers)

    def forward_reconstruction(self, x: torch.Tensor, context: torch.Tensor, temb: torch.Tensor,
                               frame_temb: torch.Tensor, action: torch.Tensor | None, tau: torch.Tensor,
                               dims: tuple[int, int, int], plan: MaskPlan) -> torch.Tensor:
        """Mask tokens at the dropped positions, then F: packed ((B T V), H Wk, D) -> full ((B T V), H W, D)."""
        b, t, v = dims
        p = self.config.patch_size
        noise = rearrange(plan.mask_noise, "b t v c h w -> (b t v) c h w")
        fill = self.mask_token(noise, repeat(tau, "b t -> (b t v)", v=v))  # ((B T V), H W, D)
        fill = fill + self.pos_embed.cropped_pos_embed(plan.grid[0] * p, plan.grid[1] * p).to(fill.dtype)
        x = unpack_tokens(x, fill.to(x.dtype), plan)  # ((B T V), H W, D)
        pos = self.temporal_pos_embed(t, x.device).to(x.dtype)  # (T, D)
        return self.reconstruction(x, context, temb, repeat(frame_temb, "b t d -> (b v) t d", v=v), action, pos,
                                   plan.time_mask, dims, plan.grid)

    def _check_mask_plan(self, plan: MaskPlan, latents: torch.Tensor) -> None:
        if not self.training:
            raise ValueError("mask reconstruction is training-only (docs/METHOD.md section 3): the model is in eval "
                             "mode, call it with mask_plan=None")
        if self.reconstruction is None:
            raise ValueError("this model was built with mask_reconstruction=False: it cannot take a mask plan")
        if not isinstance(plan, MaskPlan):
            raise TypeError(f"mask_plan must be a worldmodel.model.MaskPlan, got {type(plan).__name__}")
        b, t, v, _, h, w = latents.shape
        p = self.config.patch_size
        expected = (b, t, v, h // p)
        if tuple(plan.keep.shape[:4]) != expected or plan.grid_width != w // p:
            raise ValueError(f"mask plan for {tuple(plan.keep.shape[:4])} x W={plan.grid_width} does not fit "
                             f"latents {tuple(latents.shape)} (expected (B, T, V, H) = {expected}, W = {w // p})")
        if tuple(plan.time_mask.shape) != (b, v) or plan.mask_noise.shape != latents.shape:
            raise ValueError(f"mask plan time_mask {tuple(plan.time_mask.shape)} / mask_noise "
                             f"{tuple(plan.mask_noise.shape)} do not fit latents {tuple(latents.shape)}")

    def _checkpointed(self, module: nn.Module, *args):
        """module(*args), recomputed in the backward pass when gradient checkpointing is on."""
        if self.gradient_checkpointing and torch.is_grad_enabled():
            return checkpoint(module, *args, use_reentrant=False)
        return module(*args)
