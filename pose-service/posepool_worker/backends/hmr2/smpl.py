"""The SMPL body model as HMR2 uses it (4D-Humans ``SMPL`` = smplx ``SMPLLayer`` + OpenPose order + J19),
in plain PyTorch, always in float32.

forward(rotmats (B, 24, 3, 3), betas (B, 10)) -> vertices (B, 6890, 3), joints (B, 44, 3):
- ``smplx.lbs`` with pose2rot=False: shape blend (v_template + shapedirs . betas), joints by J_regressor,
  pose blend ((R[1:] - I) . posedirs), the kinematic chain along ``kintree_table``, linear blend skinning.
- joints = the 24 SMPL joints + 11 vertex joints (smplx ``vertex_ids['smplh']``: nose, eyes, ears, big toes,
  small toes, heels), re-ordered to OpenPose BODY_25 (``SMPL_TO_OPENPOSE``), then the 19 joints of
  SMPL_to_J19.pkl regressed from the vertices: 25 + 19 = 44, the order of HMR2's ``pred_keypoints_3d``.
No translation is applied: positions are relative to the SMPL origin (the camera translation places them).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# smplx/vertex_ids.py 'smplh' (SMPL shares the topology): nose, reye, leye, rear, lear,
# LBigToe, LSmallToe, LHeel, RBigToe, RSmallToe, RHeel -> joints 24..34
EXTRA_VERTEX_IDS = (332, 6260, 2800, 4071, 583, 3216, 3226, 3387, 6617, 6624, 6787)
# 4D-Humans hmr2/models/smpl_wrapper.py
SMPL_TO_OPENPOSE = (24, 12, 17, 19, 21, 16, 18, 20, 0, 2, 5, 8, 1, 4, 7, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34)

OPENPOSE_NAMES = (
    "nose",
    "neck",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "mid_hip",
    "right_hip",
    "right_knee",
    "right_ankle",
    "left_hip",
    "left_knee",
    "left_ankle",
    "right_eye",
    "left_eye",
    "right_ear",
    "left_ear",
    "left_big_toe",
    "left_small_toe",
    "left_heel",
    "right_big_toe",
    "right_small_toe",
    "right_heel",
)
# SMPL_to_J19.pkl rows, in the SPIN/ProHMR order HMR2 inherits (EXTRA.PELVIS_IND = 39 = 25 + 14 is the pelvis)
J19_NAMES = (
    "right_ankle_lsp",
    "right_knee_lsp",
    "right_hip_lsp",
    "left_hip_lsp",
    "left_knee_lsp",
    "left_ankle_lsp",
    "right_wrist_lsp",
    "right_elbow_lsp",
    "right_shoulder_lsp",
    "left_shoulder_lsp",
    "left_elbow_lsp",
    "left_wrist_lsp",
    "neck_lsp",
    "head_top_lsp",
    "pelvis_mpii",
    "thorax_mpii",
    "spine_h36m",
    "jaw_h36m",
    "head_h36m",
)
JOINT_NAMES = OPENPOSE_NAMES + J19_NAMES


class SMPL(nn.Module):
    # buffers (register_buffer)
    v_template: torch.Tensor
    shapedirs: torch.Tensor
    posedirs: torch.Tensor
    J_regressor: torch.Tensor
    lbs_weights: torch.Tensor
    extra_vertex_ids: torch.Tensor
    joint_map: torch.Tensor
    j19_regressor: torch.Tensor

    def __init__(self, data: dict[str, np.ndarray], j19_regressor: np.ndarray, num_betas: int = 10):
        super().__init__()
        f32 = torch.float32
        v_template = torch.as_tensor(np.asarray(data["v_template"]), dtype=f32)
        nv = v_template.shape[0]
        shapedirs = torch.as_tensor(np.asarray(data["shapedirs"])[:, :, :num_betas], dtype=f32)
        posedirs = np.asarray(data["posedirs"])  # (V, 3, 207)
        posedirs = torch.as_tensor(posedirs.reshape(-1, posedirs.shape[-1]).T.copy(), dtype=f32)  # (207, V*3)
        parents = torch.as_tensor(np.asarray(data["kintree_table"])[0].astype(np.int64))
        parents[0] = -1
        self.register_buffer("v_template", v_template)
        self.register_buffer("shapedirs", shapedirs)
        self.register_buffer("posedirs", posedirs)
        self.register_buffer("J_regressor", torch.as_tensor(np.asarray(data["J_regressor"]), dtype=f32))
        self.register_buffer("lbs_weights", torch.as_tensor(np.asarray(data["weights"]), dtype=f32))
        self.register_buffer("extra_vertex_ids", torch.tensor(EXTRA_VERTEX_IDS, dtype=torch.long))
        self.register_buffer("joint_map", torch.tensor(SMPL_TO_OPENPOSE, dtype=torch.long))
        self.register_buffer("j19_regressor", torch.as_tensor(j19_regressor, dtype=f32))
        self.parents = [int(p) for p in parents]
        self.faces = np.asarray(data["f"]).astype(np.int64)
        if self.J_regressor.shape != (len(self.parents), nv) or self.lbs_weights.shape != (nv, len(self.parents)):
            raise ValueError(
                f"inconsistent SMPL arrays: J_regressor {tuple(self.J_regressor.shape)}, "
                f"weights {tuple(self.lbs_weights.shape)}, {nv} vertices"
            )
        if self.j19_regressor.shape[1] != nv:
            raise ValueError(f"J19 regressor {tuple(self.j19_regressor.shape)} does not fit {nv} vertices")

    def forward(self, rotmats: torch.Tensor, betas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rotmats, betas = rotmats.float(), betas.float()
        b, nj = rotmats.shape[0], rotmats.shape[1]
        v_shaped = self.v_template + torch.einsum("bl,mkl->bmk", betas, self.shapedirs)
        joints = torch.einsum("bik,ji->bjk", v_shaped, self.J_regressor)
        ident = torch.eye(3, dtype=rotmats.dtype, device=rotmats.device)
        pose_feature = (rotmats[:, 1:] - ident).reshape(b, -1)
        v_posed = v_shaped + (pose_feature @ self.posedirs).reshape(b, -1, 3)
        posed_joints, rel_transforms = self.rigid_transform(rotmats, joints)
        t = (self.lbs_weights @ rel_transforms.reshape(b, nj, 16)).reshape(b, -1, 4, 4)
        verts = (t[:, :, :3, :3] @ v_posed.unsqueeze(-1))[..., 0] + t[:, :, :3, 3]
        all_joints = torch.cat([posed_joints, verts.index_select(1, self.extra_vertex_ids)], dim=1)
        openpose = all_joints.index_select(1, self.joint_map)
        j19 = torch.einsum("bik,ji->bjk", verts, self.j19_regressor)
        return verts, torch.cat([openpose, j19], dim=1)

    def rigid_transform(self, rotmats: torch.Tensor, joints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """smplx ``batch_rigid_transform``: posed joints (B, J, 3) and transforms relative to the rest pose."""
        parents = self.parents
        rel = joints.clone()
        rel[:, 1:] = joints[:, 1:] - joints[:, parents[1:]]
        local = torch.cat([F.pad(rotmats, [0, 0, 0, 1]), F.pad(rel.unsqueeze(-1), [0, 0, 0, 1], value=1)], dim=3)
        chain = [local[:, 0]]
        for i in range(1, len(parents)):
            chain.append(chain[parents[i]] @ local[:, i])
        transforms = torch.stack(chain, dim=1)
        posed = transforms[:, :, :3, 3]
        joints_h = F.pad(joints.unsqueeze(-1), [0, 0, 0, 1])
        rel_t = transforms - F.pad(transforms @ joints_h, [3, 0, 0, 0, 0, 0, 0, 0])
        return posed, rel_t
