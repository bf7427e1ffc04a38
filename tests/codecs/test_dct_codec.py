"""The DCT codec: orthonormal bases, exact latent round trip, faithful frames, golden DC value."""
from __future__ import annotations

import math

import pytest
import torch

from worldmodel.codecs import DCTCodec
from worldmodel.codecs.dct import dct_matrix, frequency_order


def test_dct_matrix_is_orthonormal() -> None:
    d = dct_matrix(4)
    torch.testing.assert_close(d @ d.T, torch.eye(4, dtype=torch.float64))


def test_basis_rows_are_orthonormal_and_counted() -> None:
    codec = DCTCodec(block=4, luma=10, chroma=3)
    assert codec.latent_channels == 16 and codec.basis.shape == (16, 48)
    torch.testing.assert_close(codec.basis @ codec.basis.T, torch.eye(16), atol=1e-6, rtol=0)


def test_encode_after_decode_is_the_identity_on_latents() -> None:
    codec = DCTCodec()
    z = torch.randn(2, 16, 3, 5) * 0.2
    torch.testing.assert_close(codec.encode(codec.decode(z)), z, atol=1e-5, rtol=0)


def test_full_codec_is_lossless_and_a_smooth_image_survives_truncation() -> None:
    frames = torch.rand(1, 3, 8, 12) * 2 - 1
    full = DCTCodec(block=2, luma=4, chroma=4)
    torch.testing.assert_close(full.decode(full.encode(frames)), frames, atol=1e-5, rtol=0)
    ramp = torch.linspace(-0.5, 0.5, 16).repeat(3, 16, 1)[None]  # varies along x only
    torch.testing.assert_close(DCTCodec().decode(DCTCodec().encode(ramp)), ramp, atol=0.02, rtol=0)


def test_dc_coefficient_golden_value() -> None:
    # A constant grey block c in all channels: luma DC = sqrt(3) * c * f (orthonormal DC of an f x f block).
    codec = DCTCodec(block=4)
    z = codec.encode(torch.full((1, 3, 4, 4), 0.25))
    assert z[0, 0, 0, 0].item() == pytest.approx(math.sqrt(3) * 0.25 * 4, rel=1e-5)
    assert z[0, 1:].abs().max().item() < 1e-6


def test_frequency_order_starts_low() -> None:
    assert frequency_order(4)[:3] == [(0, 0), (0, 1), (1, 0)]


def test_bad_sizes_are_named() -> None:
    with pytest.raises(ValueError, match="luma"):
        DCTCodec(block=4, luma=17)
    with pytest.raises(ValueError):
        DCTCodec().encode(torch.zeros(1, 3, 6, 8))


def test_codec_keeps_its_dtype_under_autocast() -> None:
    frames = torch.rand(1, 3, 8, 8) - 0.5
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert DCTCodec().encode(frames).dtype == torch.bfloat16
