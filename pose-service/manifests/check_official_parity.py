"""Run posepool's ViTPose/HMR2 code and the OFFICIAL code side by side on the same weights and inputs.

Needs git clones of ViTAE-Transformer/ViTPose, shubham-goel/4D-Humans and vchoutas/smplx (bare mirrors work:
files are read with ``git show HEAD:path``); their framework imports are stubbed as in derive_manifests.py.
Random weights and inputs; prints the largest difference of each pair. Last run (torch 1.13 CPU): every
difference was 0.0 except the DARK-UDP decoding (5e-5 px, float32 vs float64 arithmetic).

    /usr/bin/python3 manifests/check_official_parity.py --vitpose-git P --hmr2-git P --smplx-git P
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import types
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn as nn

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests"), str(HERE)]

import derive_manifests as dm  # noqa: E402
from derive_manifests import _noop, _Registry, git_show, strip_lines  # noqa: E402
from posepool_worker.backends.hmr2 import camera  # noqa: E402
from posepool_worker.backends.hmr2.config import HMR2  # noqa: E402
from posepool_worker.backends.hmr2.head import SMPLHead  # noqa: E402
from posepool_worker.backends.hmr2.smpl import EXTRA_VERTEX_IDS, SMPL, SMPL_TO_OPENPOSE  # noqa: E402
from posepool_worker.backends.topdown import crop as C  # noqa: E402
from posepool_worker.backends.vitpose import decode  # noqa: E402
from posepool_worker.backends.vitpose.config import FLIP_PAIRS, SIZES  # noqa: E402
from posepool_worker.backends.vitpose.network import ViTPoseNet  # noqa: E402
from test_topdown_fakes import fake_smpl_arrays, random_state  # noqa: E402


def load(repo, path, drop=(), **names):
    ns = {"__name__": Path(path).stem, **names}
    exec(compile(strip_lines(git_show(repo, "HEAD", path), drop), f"{repo}:{path}", "exec"), ns)
    return ns


def vitpose(repo: str) -> None:
    ns_vit = load(
        repo,
        "mmpose/models/backbones/vit.py",
        ("from timm", "from ..builder", "from .base_backbone"),
        BACKBONES=_Registry(),
        BaseBackbone=nn.Module,
        drop_path=lambda x, p, t: x,
        trunc_normal_=_noop,
        to_2tuple=lambda v: v if isinstance(v, tuple) else (v, v),
    )
    base = load(repo, "mmpose/models/heads/topdown_heatmap_base_head.py", ("from mmpose", "from ..", "from ."))
    head = load(
        repo,
        "mmpose/models/heads/topdown_heatmap_simple_head.py",
        ("from mmcv", "from mmpose", "from ..builder", "from .topdown"),
        build_conv_layer=lambda cfg, *a, **k: nn.Conv2d(*a, **k),
        build_upsample_layer=lambda cfg, *a, **k: nn.ConvTranspose2d(*a, **k),
        build_norm_layer=lambda cfg, c: ("bn", nn.BatchNorm2d(c)),
        constant_init=_noop,
        normal_init=_noop,
        pose_pck_accuracy=None,
        flip_back=None,
        build_loss=lambda c: None,
        resize=None,
        HEADS=_Registry(),
        TopdownHeatmapBaseHead=base["TopdownHeatmapBaseHead"],
    )
    cfg_ns: dict = {}
    exec(git_show(repo, "HEAD", dm.VITPOSE_CONFIGS["vitpose-s"]).replace("{{_base_.dataset_info}}", "None"), cfg_ns)
    model = cfg_ns["model"]
    off = nn.Module()
    off.backbone = ns_vit["ViT"](**{k: v for k, v in model["backbone"].items() if k != "type"})
    off.keypoint_head = head["TopdownHeatmapSimpleHead"](
        **{k: v for k, v in model["keypoint_head"].items() if k != "type"}
    )
    state = random_state({k: v.shape for k, v in off.state_dict().items()}, 7)
    off.load_state_dict(state)
    ours = ViTPoseNet(SIZES["vitpose-s"])
    ours.load_state_dict(state)
    x = torch.randn(2, 3, 256, 192)
    with torch.no_grad():
        d = (off.eval().keypoint_head(off.backbone(x)) - ours.eval()(x)).abs().max().item()
    print(f"ViTPose-S network, heatmaps        max|diff| {d:.3g}")

    post = load(repo, "mmpose/core/post_processing/post_transforms.py", ("from mmpose",))
    ev = load(
        repo,
        "mmpose/core/evaluation/top_down_eval.py",
        ("from mmpose", "from ..post_processing"),
        transform_preds=post["transform_preds"],
    )
    rng = np.random.default_rng(0)
    hm = (rng.random((4, 17, 64, 48)) * 0.1).astype(np.float32)
    ys, xs = np.mgrid[0:64, 0:48]
    for n in range(4):
        for k in range(17):
            hm[n, k] += np.exp(-((xs - rng.uniform(2, 45)) ** 2 + (ys - rng.uniform(2, 61)) ** 2) / 8).astype(
                np.float32
            )
    centers = rng.uniform(100, 400, (4, 2)).astype(np.float32)
    scales = rng.uniform(0.5, 2, (4, 2)).astype(np.float32)
    preds, maxvals = ev["keypoints_from_heatmaps"](
        hm, centers, scales, post_process="default", kernel=11, use_udp=True, target_type="GaussianHeatmap"
    )
    mine = decode.decode_heatmaps(hm, centers.astype(np.float64), scales.astype(np.float64) * 200)
    print(
        f"UDP+DARK decoding, pixels          max|diff| {np.abs(preds - mine[..., :2]).max():.3g}, "
        f"scores {np.abs(maxvals[..., 0] - mine[..., 2]).max():.3g}"
    )
    same = np.array_equal(post["flip_back"](hm.copy(), [list(p) for p in FLIP_PAIRS]), decode.flip_back(hm))
    print(f"flip_back                          identical {same}")

    img = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    box = [123.4, 56.7, 150.2, 300.9]
    x0, y0, w, h = box
    center = np.array([x0 + w * 0.5, y0 + h * 0.5], np.float32)
    if w > 0.75 * h:
        h = w / 0.75
    elif w < 0.75 * h:
        w = h * 0.75
    scale = np.array([w / 200, h / 200], np.float32) * 1.25
    trans = post["get_warp_matrix"](0, center * 2.0, np.array([192, 256]) - 1.0, scale * 200.0)
    ref = cv2.warpAffine(img, trans, (192, 256), flags=cv2.INTER_LINEAR)
    c, s = C.vitpose_box_to_center_size(box)
    ours = C.warp(img, C.udp_warp_matrix(c, s), (192, 256))
    print(f"UDP crop (uint8)                   max|diff| {np.abs(ref.astype(int) - ours.astype(int)).max()}")


def rearrange(t, pattern, **kw):  # the three einops patterns the HMR2 head uses
    if pattern == "b n (h d) -> b h n d":
        b, n, hd = t.shape
        return t.reshape(b, n, kw["h"], hd // kw["h"]).transpose(1, 2)
    if pattern == "b h n d -> b n (h d)":
        b, h, n, d = t.shape
        return t.transpose(1, 2).reshape(b, n, h * d)
    if pattern == "b c h w -> b (h w) c":
        return t.flatten(2).transpose(1, 2)
    raise ValueError(pattern)


def hmr2(repo: str, smplx_repo: str) -> None:
    import yaml

    einops = types.ModuleType("einops")
    einops.rearrange = rearrange
    layers_torch = types.ModuleType("einops.layers.torch")
    layers_torch.Rearrange = None
    sys.modules.update(
        {"einops": einops, "einops.layers": types.ModuleType("einops.layers"), "einops.layers.torch": layers_torch}
    )
    tc = load(repo, "hmr2/models/components/t_cond_mlp.py")
    pt = load(
        repo,
        "hmr2/models/components/pose_transformer.py",
        ("from .t_cond_mlp",),
        **{k: tc[k] for k in ("AdaptiveLayerNorm1D", "FrequencyEmbedder", "normalization_layer")},
    )
    geo = load(repo, "hmr2/utils/geometry.py")
    sh = load(
        repo,
        "hmr2/models/heads/smpl_head.py",
        ("from ...utils.geometry", "from ..components.pose_transformer"),
        rot6d_to_rotmat=geo["rot6d_to_rotmat"],
        aa_to_rotmat=geo["aa_to_rotmat"],
        TransformerDecoder=pt["TransformerDecoder"],
    )
    exp = yaml.safe_load(git_show(repo, "HEAD", "hmr2/configs_hydra/experiment/hmr_vit_transformer.yaml"))
    base = yaml.safe_load(git_show(repo, "HEAD", "hmr2/configs_hydra/experiment/default.yaml"))

    class Cfg(dict):
        def __getattr__(self, k):
            v = self[k]
            return Cfg(v) if isinstance(v, dict) else v

    with tempfile.TemporaryDirectory() as tmp:
        np.savez(
            f"{tmp}/m.npz",
            pose=np.random.randn(144).astype(np.float32),
            shape=np.random.randn(10).astype(np.float32),
            cam=np.array([0.9, 0.0, 0.0], np.float32),
        )
        smpl_cfg = {**base["SMPL"], "MEAN_PARAMS": f"{tmp}/m.npz"}
        off = sh["SMPLTransformerDecoderHead"](Cfg({"MODEL": exp["MODEL"], "SMPL": smpl_cfg})).eval()
    state = random_state({k: v.shape for k, v in off.state_dict().items()}, 3)
    for k in ("init_body_pose", "init_betas", "init_cam"):
        state[k] = off.state_dict()[k]
    off.load_state_dict(state)
    ours = SMPLHead(HMR2.head, 1280).eval()
    ours.load_state_dict(state)
    feats = torch.randn(3, 1280, 16, 12)
    with torch.no_grad():
        p, cam, _ = off(feats)
        rot, betas, cam2 = ours(feats)
    d = max(
        (torch.cat([p["global_orient"], p["body_pose"]], 1) - rot).abs().max().item(),
        (p["betas"] - betas).abs().max().item(),
        (cam - cam2).abs().max().item(),
    )
    print(f"HMR2 head (rotmats, betas, cam)    max|diff| {d:.3g}")

    lbs = load(smplx_repo, "smplx/lbs.py", ("from .utils",), Tensor=torch.Tensor, rot_mat_to_euler=None)
    arr = fake_smpl_arrays(4)
    j19 = np.random.default_rng(2).random((19, 6890)) / 6890
    f = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
    betas = torch.randn(2, 10)
    rot = geo["rot6d_to_rotmat"](torch.randn(48, 6)).reshape(2, 24, 3, 3)
    parents = torch.as_tensor(arr["kintree_table"][0]).long()
    parents[0] = -1
    verts, joints = lbs["lbs"](
        betas,
        rot,
        f(arr["v_template"]),
        f(arr["shapedirs"]),
        f(arr["posedirs"].reshape(-1, 207).T),
        f(arr["J_regressor"]),
        parents,
        f(arr["weights"]),
        pose2rot=False,
    )
    joints = torch.cat([joints, verts[:, list(EXTRA_VERTEX_IDS)]], 1)[:, list(SMPL_TO_OPENPOSE)]
    joints = torch.cat([joints, torch.einsum("bik,ji->bjk", verts, f(j19))], 1)
    v2, j2 = SMPL(arr, j19)(rot, betas)
    diff = max((verts - v2).abs().max().item(), (joints - j2).abs().max().item())
    print(f"SMPL (smplx lbs + joint map + J19) max|diff| {diff:.3g}")

    ren = git_show(repo, "HEAD", "hmr2/utils/renderer.py")
    ns_r = {"torch": torch}
    exec(ren[ren.index("def cam_crop_to_full") : ren.index("def get_light_poses")], ns_r)
    cam_b = torch.tensor([[0.8, 0.1, -0.2], [1.1, -0.05, 0.3]])
    bc, bs = torch.tensor([[300.0, 200.0], [100.0, 50.0]]), torch.tensor([250.0, 120.0])
    wh, fl = torch.tensor([[640.0, 480.0], [1280.0, 720.0]]), torch.tensor([5000 / 256 * 640, 5000 / 256 * 1280])
    d = (
        (ns_r["cam_crop_to_full"](cam_b, bc, bs, wh, fl) - camera.full_image_translation(cam_b, bc, bs, wh, fl))
        .abs()
        .max()
    )
    print(f"cam_crop_to_full                   max|diff| {d.item():.3g}")
    pts, t = torch.randn(2, 44, 3) * 0.5, camera.crop_translation(cam_b, 5000.0, 256)
    d = (
        (
            geo["perspective_projection"](pts, translation=t, focal_length=torch.full((2, 2), 5000.0) / 256)
            - camera.project_to_crop(pts, t, 5000.0, 256)
        )
        .abs()
        .max()
    )
    print(f"perspective_projection             max|diff| {d.item():.3g}")

    du = git_show(repo, "HEAD", "hmr2/datasets/utils.py")
    ns_u = {"np": np, "cv2": cv2, "Tuple": tuple, "Dict": dict, "List": list}
    for fn in ("rotate_2d", "gen_trans_from_patch_cv", "generate_image_patch_cv2", "expand_to_aspect_ratio"):
        i = du.index(f"def {fn}(")
        exec(du[i : du.find("\ndef ", i + 5)], ns_u)
    img = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    worst = 0
    for box in ([100.3, 50.2, 120.7, 300.1], [10, 20, 400, 100], [300.5, 100.25, 80, 81]):
        x0, y0, w, h = box
        size = ns_u["expand_to_aspect_ratio"](np.array([w, h]), target_aspect_ratio=[192, 256]).max()
        ref, _ = ns_u["generate_image_patch_cv2"](
            img, x0 + w / 2, y0 + h / 2, size, size, 256, 256, False, 1.0, 0, border_mode=cv2.BORDER_CONSTANT
        )
        c, s = C.hmr2_box_to_center_size(box)
        worst = max(
            worst, np.abs(ref.astype(int) - C.warp(img, C.square_crop_matrix(c, s, 256), (256, 256)).astype(int)).max()
        )
    print(f"HMR2 square crop (uint8, no blur)  max|diff| {worst}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vitpose-git", required=True)
    ap.add_argument("--hmr2-git", required=True)
    ap.add_argument("--smplx-git", required=True)
    args = ap.parse_args()
    torch.manual_seed(0)
    vitpose(args.vitpose_git)
    hmr2(args.hmr2_git, args.smplx_git)


if __name__ == "__main__":
    main()
