"""Helpers (no tests here): checkpoint and SMPL files in the official formats, with random values.

- ViTPose: the mmpose container {'meta': {...}, 'state_dict': OrderedDict} (optionally as ViTPose++, with the
  MLP's fc2 split into a shared part and experts, plus associate heads), saved with torch.save.
- HMR2: a PyTorch Lightning .ckpt {'epoch', 'global_step', 'pytorch-lightning_version', 'state_dict',
  'hyper_parameters': {'cfg': yacs.config.CfgNode}, 'loops', 'callbacks', ...} whose state_dict also carries
  the training-only discriminator.* and the smpl.* buffers; the CfgNode is pickled under its real module
  name (a stand-in class registered as yacs.config for the time of the save).
- SMPL: a pickle with the official keys whose arrays are chumpy Ch objects and whose J_regressor is a
  scipy.sparse csc_matrix (stand-in classes registered as chumpy.ch / scipy.sparse.csc while pickling), so
  the loader's restricted unpickler meets the same globals as in the real file; real SMPL sizes and
  kinematic tree, random geometry.
"""

from __future__ import annotations

import collections
import contextlib
import copyreg
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import torch

SMPL_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]
NUM_VERTS, NUM_FACES = 6890, 13776


def random_state(shapes: dict[str, torch.Size], seed: int = 0) -> collections.OrderedDict:
    """Random tensors for (name -> shape), initialised like a trained net's scale: weights ~N(0, 0.02),
    norms ~1, BN running_var ~1, num_batches_tracked int64."""
    g = torch.Generator().manual_seed(seed)
    out = collections.OrderedDict()
    for name, shape in shapes.items():
        shape = tuple(shape)
        if name.endswith("num_batches_tracked"):
            out[name] = torch.tensor(1000, dtype=torch.long)
        elif name.endswith("running_var"):
            out[name] = 0.5 + torch.rand(shape, generator=g)
        elif ("norm" in name or name.endswith(("deconv_layers.1.weight", "deconv_layers.4.weight"))) and name.endswith(
            "weight"
        ):
            out[name] = 1.0 + 0.02 * torch.randn(shape, generator=g)
        else:
            out[name] = 0.02 * torch.randn(shape, generator=g)
    return out


def write_vitpose_checkpoint(
    path: Path, shapes: dict[str, torch.Size], seed: int = 0, plus: bool = False, part_features: int = 8
) -> collections.OrderedDict:
    """The mmpose checkpoint container. ``plus``: ViTPose++ layout (fc2 split into fc2 + experts.0..5, and
    associate_keypoint_heads). Returns the classic-layout state dict (what the model must end up with)."""
    state = random_state(shapes, seed)
    saved = collections.OrderedDict(state)
    if plus:
        saved = collections.OrderedDict()
        g = torch.Generator().manual_seed(seed + 1)
        for k, v in state.items():
            if ".mlp.fc2." in k:
                saved[k] = v[:-part_features].clone()
                for e in range(6):
                    ek = k.replace("fc2.", f"experts.{e}.")
                    saved[ek] = (
                        v[-part_features:].clone() if e == 0 else torch.randn(v[-part_features:].shape, generator=g)
                    )
            else:
                saved[k] = v
        saved["associate_keypoint_heads.0.final_layer.weight"] = torch.zeros(14, 4, 1, 1)
    saved["backbone.cls_token"] = torch.zeros(
        1, 1, next(v for k, v in state.items() if k.endswith("pos_embed")).shape[-1]
    )
    torch.save(
        {
            "meta": {
                "mmcv_version": "1.3.9",
                "epoch": 210,
                "iter": 123,
                "config": "model = dict(type='TopDown')",
                "CLASSES": None,
                "time": "Thu Apr 21 00:00:00 2022",
            },
            "state_dict": saved,
            "optimizer": {"state": {}, "param_groups": [{"lr": 5e-4, "params": [0, 1]}]},
        },
        path,
    )
    return state


@contextlib.contextmanager
def fake_modules(**modules: dict[str, type]):
    """Register stand-in classes under real module names while pickling, so the pickle names e.g.
    ``yacs.config.CfgNode``; removed afterwards (the loader must cope without those packages)."""
    added = []
    for dotted, classes in modules.items():
        dotted = dotted.replace("__", ".")
        parts = dotted.split(".")
        for i in range(1, len(parts) + 1):
            name = ".".join(parts[:i])
            if name not in sys.modules:
                sys.modules[name] = types.ModuleType(name)
                added.append(name)
        for cls_name, cls in classes.items():
            cls.__module__ = dotted
            cls.__qualname__ = cls.__name__ = cls_name
            setattr(sys.modules[dotted], cls_name, cls)
    try:
        yield
    finally:
        for name in added:
            sys.modules.pop(name, None)


class CfgNode(dict):
    """Stand-in for yacs.config.CfgNode (a dict subclass with attributes)."""


def write_hmr2_checkpoint(path: Path, shapes: dict[str, torch.Size], seed: int = 0) -> collections.OrderedDict:
    state = random_state(shapes, seed)
    saved = collections.OrderedDict(state)
    saved["discriminator.D_conv1.weight"] = torch.zeros(32, 9, 1)
    saved["smpl.v_template"] = torch.zeros(NUM_VERTS, 3)
    saved["smpl.shapedirs"] = torch.zeros(NUM_VERTS, 3, 10)
    saved["initialized"] = torch.tensor(True)
    cfg = CfgNode(MODEL=CfgNode(IMAGE_SIZE=256, BACKBONE=CfgNode(TYPE="vit")), EXTRA=CfgNode(FOCAL_LENGTH=5000))
    cfg.__dict__["_immutable"] = True
    with fake_modules(yacs__config={"CfgNode": CfgNode}):
        torch.save(
            {
                "epoch": 35,
                "global_step": 1000000,
                "pytorch-lightning_version": "2.0.0",
                "state_dict": saved,
                "hyper_parameters": {"cfg": cfg},
                "hparams_name": "kwargs",
                "loops": {"fit_loop": {"state_dict": {}}},
                "callbacks": {},
                "optimizer_states": [],
                "lr_schedulers": [],
            },
            path,
        )
    return state


class Ch:
    """Stand-in for chumpy.ch.Ch: pickled as its __dict__ with the value in 'x' (as chumpy's __getstate__)."""

    def __init__(self, x):
        self.x = x
        self._dirty_vars = set()

    def __reduce_ex__(self, protocol):
        return copyreg._reconstructor, (type(self), object, None), {"x": self.x, "_dirty_vars": set()}


class csc_matrix:  # the scipy class name
    def __init__(self, dense: np.ndarray):
        col_ids, row_ids = np.nonzero(dense.T)  # column-major walk
        self.state = {
            "data": dense[row_ids, col_ids],
            "indices": row_ids.astype(np.int32),
            "indptr": np.searchsorted(col_ids, np.arange(dense.shape[1] + 1)).astype(np.int32),
            "_shape": dense.shape,
            "maxprint": 50,
            "format": "csc",
        }

    def __reduce_ex__(self, protocol):
        return copyreg._reconstructor, (type(self), object, None), self.state


def fake_smpl_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    """Real SMPL sizes and kinematic tree, random geometry roughly body-sized (metres)."""
    rng = np.random.default_rng(seed)
    v_template = rng.uniform([-0.4, -1.1, -0.15], [0.4, 0.6, 0.15], size=(NUM_VERTS, 3))
    j_regressor = np.zeros((24, NUM_VERTS))
    weights = np.zeros((NUM_VERTS, 24))
    owner = rng.integers(0, 24, NUM_VERTS)
    weights[np.arange(NUM_VERTS), owner] = 0.7
    weights[np.arange(NUM_VERTS), [max(SMPL_PARENTS[j], 0) for j in owner]] += 0.3  # rows sum to 1
    for j in range(24):
        idx = rng.choice(NUM_VERTS, 6, replace=False)
        j_regressor[j, idx] = 1.0 / 6
    return {
        "v_template": v_template,
        "shapedirs": rng.normal(0, 0.01, (NUM_VERTS, 3, 10)),
        "posedirs": rng.normal(0, 0.001, (NUM_VERTS, 3, 207)),
        "J_regressor": j_regressor,
        "weights": weights,
        "kintree_table": np.array([[4294967295, *SMPL_PARENTS[1:]], list(range(24))], dtype=np.int64),
        "f": rng.integers(0, NUM_VERTS, (NUM_FACES, 3)).astype(np.uint32),
    }


def write_fake_smpl(path: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """SMPL_NEUTRAL.pkl look-alike: chumpy Ch arrays, scipy csc J_regressor, extra official keys."""
    arrays = fake_smpl_arrays(seed)
    obj = {
        "v_template": Ch(arrays["v_template"]),
        "shapedirs": Ch(arrays["shapedirs"]),
        "posedirs": arrays["posedirs"],
        "J_regressor": csc_matrix(arrays["J_regressor"]),
        "weights": Ch(arrays["weights"]),
        "kintree_table": arrays["kintree_table"],
        "f": arrays["f"],
        "J": Ch(arrays["J_regressor"] @ arrays["v_template"]),
        "bs_style": "lbs",
        "bs_type": "lrotmin",
        "vert_sym_idxs": np.arange(NUM_VERTS),
        "weights_prior": arrays["weights"],
    }
    with fake_modules(chumpy__ch={"Ch": Ch}, scipy__sparse__csc={"csc_matrix": csc_matrix}), open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)
    return arrays


def write_j19(path: Path, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    reg = np.zeros((19, NUM_VERTS))
    for j in range(19):
        reg[j, rng.choice(NUM_VERTS, 5, replace=False)] = 0.2
    with open(path, "wb") as f:
        pickle.dump(reg, f, protocol=2)
    return reg


def hmr2_models_dir(root: Path, shapes: dict[str, torch.Size], smpl: bool = True) -> Path:
    """POSE_MODELS_DIR with the hmr2_data.tar.gz layout, a fake checkpoint, J19 and (optionally) SMPL."""
    ckpt = root / "hmr2/logs/train/multiruns/hmr2/0/checkpoints/epoch=35-step=1000000.ckpt"
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    write_hmr2_checkpoint(ckpt, shapes)
    (root / "hmr2/data").mkdir(parents=True, exist_ok=True)
    write_j19(root / "hmr2/data/SMPL_to_J19.pkl")
    if smpl:
        write_fake_smpl(root / "SMPL_NEUTRAL.pkl")
    return root
