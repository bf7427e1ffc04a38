"""Latent codecs: frames in [-1, 1] <-> latent grids for the world model."""

from worldmodel.codecs.base import LatentCodec
from worldmodel.codecs.dct import DCTCodec
from worldmodel.codecs.pixel import PixelCodec
from worldmodel.codecs.vae import DiffusersVAECodec

__all__ = ["DCTCodec", "DiffusersVAECodec", "LatentCodec", "PixelCodec"]
