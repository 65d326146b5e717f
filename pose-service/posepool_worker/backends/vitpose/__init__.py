"""ViTPose-S/B/L/H (ViTAE-Transformer/ViTPose) in plain PyTorch: see backend.py for the path of a frame."""

from .backend import ViTPoseBackend

__all__ = ["ViTPoseBackend"]
