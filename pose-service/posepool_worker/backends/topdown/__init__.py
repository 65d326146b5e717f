"""Shared pieces of the top-down backends (ViTPose, HMR2): person boxes, crops, precision, checkpoint files.

Top-down models pose one person inside a box, so each frame first needs a person box:

- ``boxes``: the box source. MoveNet (the bundled movenet-thunder backend, offline, no detector download)
  poses the frame and its person gives the box; when several persons come back, the rider is the one with
  the best size x centrality rank (a large person near the frame centre). When MoveNet finds nobody (or
  fails on that frame), the whole frame is the box (``boxSource: "full-frame"`` on the person).
- ``crop``: the affine crops (ViTPose's UDP crop with 1.25 padding at 192x256, HMR2's square 256x256
  crop) and the ImageNet normalisation, batched into one tensor.
- ``precision``: fp32 / fp16 / bf16 autocast per device (``POSE_PRECISION``).
- ``checkpoints``: loading the official checkpoint files safely (``weights_only`` or a restricted
  unpickler), shape checks, meta-device construction, CUDA out-of-memory at load as a StartupError.
- ``model_files``: where the files live under ``POSE_MODELS_DIR`` and the ModelFilesMissing error.
"""
