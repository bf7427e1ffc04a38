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


def test_standardised_codec_round_trips_and_decodes_the_same_frames() -> None:
    mean = torch.linspace(-1.0, 0.5, 16).tolist()
    std = torch.linspace(0.05, 2.0, 16).tolist()
    plain, standardised = DCTCodec(), DCTCodec(channel_mean=mean, channel_std=std)
    frames = torch.rand(2, 3, 8, 12) - 0.5  # within [-1, 1] after projection too: decode's clamp stays out of it
    z = standardised.encode(frames)
    # Standardisation is an exact affine map of the plain codec's latents ...
    expected = (plain.encode(frames) - torch.tensor(mean).view(16, 1, 1)) / torch.tensor(std).view(16, 1, 1)
    torch.testing.assert_close(z, expected, atol=1e-5, rtol=1e-5)
    # ... so both decode to the same frames, and encode(decode(z)) is still the identity.
    torch.testing.assert_close(standardised.decode(z), plain.decode(plain.encode(frames)), atol=1e-5, rtol=0)
    torch.testing.assert_close(standardised.encode(standardised.decode(z)), z, atol=1e-4, rtol=0)


def test_measured_statistics_standardise_the_channels() -> None:
    from worldmodel.codecs.dct_stats import channel_statistics

    generator = torch.Generator().manual_seed(0)
    # Smooth random frames with a colour cast: channels of very different spreads and a nonzero mean.
    low = torch.rand(6, 3, 4, 8, generator=generator)
    frames = torch.nn.functional.interpolate(low, size=(16, 32), mode="bilinear") * 0.8 - 0.3
    clips = [{"frames": ((frames[i:i + 3] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
              .permute(0, 2, 3, 1)[:, None].numpy()} for i in (0, 3)]  # (T, V, H, W, 3) uint8
    mean, std = channel_statistics(DCTCodec(), clips)
    assert max(std) / min(std) > 5
    codec = DCTCodec(channel_mean=mean, channel_std=std)
    quantised = torch.cat([torch.from_numpy(c["frames"][:, 0]).permute(0, 3, 1, 2).float() / 127.5 - 1 for c in clips])
    z = codec.encode(quantised)
    # Statistics are printed to 4 decimals: a channel of spread 0.01 is standardised to within 1 %.
    torch.testing.assert_close(z.mean(dim=(0, 2, 3)), torch.zeros(16), atol=1e-2, rtol=0)
    torch.testing.assert_close(z.std(dim=(0, 2, 3), unbiased=False), torch.ones(16), atol=1e-2, rtol=0)


def test_bad_channel_statistics_are_named() -> None:
    with pytest.raises(ValueError, match="16 values"):
        DCTCodec(channel_mean=[0.0] * 15, channel_std=[1.0] * 16)
    with pytest.raises(ValueError, match="> 0"):
        DCTCodec(channel_std=[1.0] * 15 + [0.0])


def test_dct_stats_cli_prints_config_lines(capsys) -> None:
    from worldmodel.codecs.dct_stats import main

    main(["--clips", "2", "experiment=quickstart", "data.clip.size=[32,64]", "data.clip.num_frames=2"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("channel_mean: [") and lines[1].startswith("channel_std: [")
    std = [float(x) for x in lines[1].split("[")[1].rstrip("]").split(",")]
    assert len(std) == 16 and min(std) > 0


def test_unstandardised_codec_keeps_its_dtype_under_autocast() -> None:
    frames = torch.rand(1, 3, 8, 8) - 0.5
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert DCTCodec().encode(frames).dtype == torch.bfloat16
        assert DCTCodec(channel_std=[2.0] * 16).encode(frames).dtype == torch.bfloat16


def test_statistics_are_part_of_the_codec_description() -> None:
    assert "channel_std" not in repr(DCTCodec())
    assert repr(DCTCodec(channel_std=[2.0] * 16)) != repr(DCTCodec(channel_std=[3.0] * 16))


def test_dct_stats_refuses_a_latent_cache(tmp_path) -> None:
    from worldmodel.codecs.dct_stats import main

    with pytest.raises(SystemExit, match="latent cache"):
        main(["experiment=quickstart", "data=latent_cache", f"data.train.cache_dir={tmp_path}"])
