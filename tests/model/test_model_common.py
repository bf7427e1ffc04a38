"""The common model tests (tests/model/model_tester.py) on each MaskGWM variant, as diffusers' per-model files do."""
from __future__ import annotations

import pytest

# The mixin's asserts live in a helper module: have pytest rewrite them so a failure shows the values.
pytest.register_assert_rewrite("tests.model.model_tester")

from tests.model.model_tester import MaskGWMTesterMixin  # noqa: E402


class TestMaskGWMLong(MaskGWMTesterMixin):
    """Single view (MaskGWM-long); its MR modules exist (the preset builds them) but an unmasked pass idles them."""

    preset = "tiny"


class TestMaskGWMMultiView(MaskGWMTesterMixin):
    """Six cameras with a view block after every spatial block (MaskGWM-mview)."""

    preset = "tiny_mview"
    num_frames = 2  # 6 views already make 12 images a sample
    active_branches = ("temporal", "action", "view")


class TestMaskGWMMaskReconstruction(MaskGWMTesterMixin):
    """A training forward with a mask plan: packed encoder, mask tokens, F (both branches), decoder."""

    preset = "tiny"
    latent_size = (8, 16)  # 4 x 8 tokens: a mask ratio 0.25 drops 2 of 8 per row
    uses_mask_plan = True
    active_branches = ("temporal", "action", "reconstruction")


class TestMaskGWMWarpCondition(MaskGWMTesterMixin):
    """Warp-conditioned: each non-reference frame also sees its warp through the zero-initialised warp_embed."""

    preset = "tiny"
    init_overrides = {"warp_condition": True}
    uses_warp = True
    active_branches = ("temporal", "action", "warp")
