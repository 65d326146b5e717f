"""HMR 2.0 (4D-Humans) architecture and files, from hmr2/configs_hydra/experiment/{hmr_vit_transformer,default}.yaml.

Backbone: the ViTPose-H transformer (1280 wide, 32 blocks, 16 heads, 256x192 input = the 256x256 crop's
columns 32:-32). Head: SMPLTransformerDecoderHead with a zero input token (dim 1), dim 1024, 6 layers of
[self-attention, cross-attention to the 192 backbone tokens (context 1280), FFN 1024], 8 heads of 64,
LayerNorm (eps 1e-5), one IEF iteration, 6D joint rotations (24 x 6 = 144) added to the checkpoint's
``init_body_pose`` / ``init_betas`` / ``init_cam`` means. Camera: focal length 5000 for a 256-pixel crop.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..vitpose.config import ViTConfig


@dataclass(frozen=True)
class HeadConfig:
    dim: int = 1024
    depth: int = 6
    heads: int = 8
    dim_head: int = 64
    mlp_dim: int = 1024
    num_body_joints: int = 23
    num_betas: int = 10


@dataclass(frozen=True)
class HMR2Config:
    backbone: ViTConfig
    head: HeadConfig
    crop_size: int = 256  # MODEL.IMAGE_SIZE
    focal_length: float = 5000.0  # EXTRA.FOCAL_LENGTH
    label: str = "HMR 2.0"


HMR2 = HMR2Config(ViTConfig(1280, 32, 16), HeadConfig())

# POSE_TEST_TINY_MODELS only (see topdown/test_settings.py): same key names, tiny widths.
TINY = HMR2Config(
    ViTConfig(32, 2, 2),
    HeadConfig(dim=32, depth=1, heads=2, dim_head=8, mlp_dim=32),
    label="HMR 2.0 tiny test architecture",
)

# Under POSE_MODELS_DIR: hmr2_data.tar.gz extracted into hmr2/ (4D-Humans' download_models layout).
CHECKPOINT = "hmr2/logs/train/multiruns/hmr2/0/checkpoints/epoch=35-step=1000000.ckpt"
J19_REGRESSOR = "hmr2/data/SMPL_to_J19.pkl"
# The licensed SMPL neutral model, supplied by the user (first existing wins).
SMPL_FILES = (
    "SMPL_NEUTRAL.pkl",
    "SMPL_NEUTRAL.npz",
    "smpl/SMPL_NEUTRAL.pkl",
    "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl",
    "basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl",
    "hmr2/data/smpl/SMPL_NEUTRAL.pkl",
)
SMPL_URL = "https://smpl.is.tue.mpg.de"
SMPLIFY_URL = (
    "https://smplify.is.tue.mpg.de"  # where 4D-Humans says basicModel_neutral_lbs_10_207_0_v1.0.0.pkl comes from
)
