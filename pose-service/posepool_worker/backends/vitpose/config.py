"""ViTPose architectures (from the official configs ViTPose_{small,base,large,huge}_coco_256x192.py) and files.

All four: input 256x192 (h x w), patch 16 (padding 2 -> a 16x12 token grid), mlp ratio 4, qkv bias,
LayerNorm eps 1e-6, classic head (2 x [deconv 4x4 s2 -> BN -> ReLU] with 256 channels, 1x1 conv to 17),
heatmaps 64x48, decoding UDP + DARK refinement with a Gaussian kernel of 11 (test_cfg use_udp=True,
modulate_kernel=11), flip test on in the official evaluation (off by default here: options["flipTest"]).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ViTConfig:
    embed_dim: int
    depth: int
    num_heads: int
    img_hw: tuple[int, int] = (256, 192)
    patch_size: int = 16
    mlp_ratio: int = 4


@dataclass(frozen=True)
class ViTPoseConfig:
    backbone: ViTConfig
    deconv_channels: int = 256
    num_keypoints: int = 17
    label: str = ""

    @property
    def heatmap_wh(self) -> tuple[int, int]:
        # 16x12 tokens, two stride-2 deconvolutions: x4
        return (
            self.backbone.img_hw[1] // self.backbone.patch_size * 4,
            self.backbone.img_hw[0] // self.backbone.patch_size * 4,
        )


SIZES: dict[str, ViTPoseConfig] = {
    "vitpose-s": ViTPoseConfig(ViTConfig(384, 12, 12), label="ViTPose-S"),
    "vitpose-b": ViTPoseConfig(ViTConfig(768, 12, 12), label="ViTPose-B"),
    "vitpose-l": ViTPoseConfig(ViTConfig(1024, 24, 16), label="ViTPose-L"),
    "vitpose-h": ViTPoseConfig(ViTConfig(1280, 32, 16), label="ViTPose-H"),
}

# POSE_TEST_TINY_MODELS only (see topdown/test_settings.py): same key names, tiny widths.
TINY = ViTPoseConfig(ViTConfig(32, 2, 2), deconv_channels=16, label="ViTPose tiny test architecture")

# File names under POSE_MODELS_DIR, in order of preference: the classic COCO checkpoint, then ViTPose++
# (mixture-of-experts, converted on load exactly as the official tools/model_split.py does for COCO).
FILES: dict[str, tuple[str, ...]] = {
    "vitpose-s": ("vitpose-s.pth", "vitpose+_small.pth"),
    "vitpose-b": ("vitpose-b.pth", "vitpose+_base.pth"),
    "vitpose-l": ("vitpose-l.pth", "vitpose+_large.pth"),
    "vitpose-h": ("vitpose-h.pth", "vitpose+_huge.pth"),
}

# test_cfg of the official configs
DARK_KERNEL = 11
# COCO-17 left/right pairs (configs/_base_/datasets/coco.py "swap")
FLIP_PAIRS = ((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16))
