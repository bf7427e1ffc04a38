"""worldmodel: MaskGWM driving world models."""
__version__ = "0.1.0"
