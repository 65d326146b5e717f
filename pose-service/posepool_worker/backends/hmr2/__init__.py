"""HMR 2.0 (shubham-goel/4D-Humans) in plain PyTorch: see backend.py for the path of a frame and the fields."""

from .backend import HMR2Backend

__all__ = ["HMR2Backend"]
