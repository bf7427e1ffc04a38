"""Tests for PixelCodec: shapes, exact round trip, chunked video helpers, size errors."""

import pytest
import torch

from worldmodel.codecs import LatentCodec, PixelCodec


def test_shapes_and_latent_shape():
    codec = PixelCodec(factor=4)
    assert isinstance(codec, LatentCodec)
    assert codec.latent_channels == 48 and codec.downsample == 4
    assert codec.latent_shape(32, 48) == (48, 8, 12)
    z = codec.encode(torch.rand(5, 3, 32, 48) * 2 - 1)
    assert z.shape == (5, 48, 8, 12)
    assert list(codec.parameters()) == []


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_exact_round_trip(scale):
    codec = PixelCodec(factor=2, scale=scale)
    x = torch.rand(3, 3, 8, 12) * 2 - 1
    assert torch.equal(codec.decode(codec.encode(x)), x)


def test_scale_multiplies_latents():
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    assert torch.allclose(PixelCodec(2, scale=3.0).encode(x), 3.0 * PixelCodec(2).encode(x))


def test_video_round_trip_with_chunks():
    codec = PixelCodec(factor=4, chunk_size=3)
    video = torch.rand(2, 5, 3, 3, 16, 24) * 2 - 1  # (b, t, v, 3, H, W)
    z = codec.encode_video(video)
    assert z.shape == (2, 5, 3, 48, 4, 6)
    # Each frame's latent equals encoding that frame alone: no mixing across the flattening.
    assert torch.equal(z[1, 2, 0], codec.encode(video[1, 2, 0][None])[0])
    assert torch.equal(codec.decode_video(z), video)


def test_decode_clamps():
    codec = PixelCodec(factor=2)
    out = codec.decode(torch.full((1, 12, 2, 2), 5.0))
    assert out.max().item() == 1.0


def test_indivisible_size_error_names_size_and_fix():
    codec = PixelCodec(factor=4)
    with pytest.raises(ValueError, match=r"divisible.*30x48.*resize or crop"):
        codec.encode(torch.zeros(1, 3, 30, 48))
    with pytest.raises(ValueError, match="30x48"):
        codec.latent_shape(30, 48)
