"""Where the top-down models' files live under POSE_MODELS_DIR, and the error when they are not there.

Layout (``npm run models:download -- NAME`` creates it; see the README's model table):

    $POSE_MODELS_DIR/vitpose-s.pth ... vitpose-h.pth     official mmpose checkpoints (COCO, classic head)
    $POSE_MODELS_DIR/vitpose+_small.pth ... (optional)   official ViTPose++ checkpoints, used when the above is absent
    $POSE_MODELS_DIR/hmr2/                               hmr2_data.tar.gz extracted here:
        logs/train/multiruns/hmr2/0/checkpoints/epoch=35-step=1000000.ckpt
        data/SMPL_to_J19.pkl
    $POSE_MODELS_DIR/SMPL_NEUTRAL.pkl                    licensed, user-supplied (https://smpl.is.tue.mpg.de)
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ...errors import StartupError


def first_existing(candidates: Iterable[Path]) -> Path | None:
    for path in candidates:
        if path.is_file():
            return path
    return None


def download_hint(model: str, models_dir: Path) -> str:
    return (
        f"run `npm run models:download -- {model}` (it puts the official files into POSE_MODELS_DIR="
        f"{models_dir}), then `npm run doctor`"
    )


def files_missing(model: str, models_dir: Path, expected: Path, what: str = "weights") -> StartupError:
    return StartupError("ModelFilesMissing", f"{model}: {what} not found: {expected}", download_hint(model, models_dir))
