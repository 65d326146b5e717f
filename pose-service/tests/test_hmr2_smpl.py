"""SMPL without chumpy: reading the official pickle layout, and linear blend skinning against a reference."""

import os
import pickle

import numpy as np
import pytest
import torch

from posepool_worker.backends.hmr2 import smpl as smpl_mod
from posepool_worker.backends.hmr2.head import rot6d_to_rotmat
from posepool_worker.backends.hmr2.smpl_file import SMPL_KEYS, read_regressor, read_smpl
from test_topdown_fakes import NUM_VERTS, SMPL_PARENTS, write_fake_smpl, write_j19


@pytest.fixture(scope="module")
def smpl_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("smpl")
    arrays = write_fake_smpl(d / "SMPL_NEUTRAL.pkl")
    j19 = write_j19(d / "SMPL_to_J19.pkl")
    return d, arrays, j19


def test_reads_chumpy_and_scipy_sparse_without_those_packages(smpl_files):
    d, arrays, j19 = smpl_files
    import sys

    assert "chumpy" not in sys.modules and "scipy" not in sys.modules
    data = read_smpl(d / "SMPL_NEUTRAL.pkl")
    assert set(data) == set(SMPL_KEYS)
    for k in SMPL_KEYS:
        assert np.array_equal(data[k], arrays[k]), k
    assert data["J_regressor"].shape == (24, NUM_VERTS) and data["shapedirs"].shape == (NUM_VERTS, 3, 10)
    assert np.array_equal(read_regressor(d / "SMPL_to_J19.pkl"), j19.astype(np.float32))


def test_a_converted_npz_reads_the_same(smpl_files, tmp_path):
    _d, arrays, _ = smpl_files
    np.savez(tmp_path / "SMPL_NEUTRAL.npz", **arrays)
    data = read_smpl(tmp_path / "SMPL_NEUTRAL.npz")
    assert all(np.array_equal(data[k], arrays[k]) for k in SMPL_KEYS)


def test_anything_else_in_an_smpl_pickle_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return os.system, (f"touch {tmp_path / 'pwned'}",)

    with open(tmp_path / "evil.pkl", "wb") as f:
        pickle.dump({"v_template": Evil()}, f, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="unexpected class"):
        read_smpl(tmp_path / "evil.pkl")
    assert not (tmp_path / "pwned").exists()
    with open(tmp_path / "partial.pkl", "wb") as f:
        pickle.dump({"v_template": np.zeros((3, 3))}, f, protocol=2)
    with pytest.raises(ValueError, match="missing keys"):
        read_smpl(tmp_path / "partial.pkl")


def random_rotmats(rng, n):
    six = torch.as_tensor(rng.normal(size=(n, 6)), dtype=torch.float32)
    return rot6d_to_rotmat(six)


def reference_lbs(data, j19, rotmats, betas):
    """Textbook SMPL in numpy float64 with explicit loops (world transforms per joint, then skinning)."""
    v = data["v_template"] + np.einsum("l,mkl->mk", betas, data["shapedirs"][:, :, :10])
    joints = data["J_regressor"] @ v
    pose_feature = (rotmats[1:] - np.eye(3)).reshape(-1)
    v = v + (data["posedirs"].reshape(-1, 207) @ pose_feature).reshape(-1, 3)
    world = []
    for i in range(24):
        local = np.eye(4)
        local[:3, :3] = rotmats[i]
        p = SMPL_PARENTS[i]
        local[:3, 3] = joints[i] - (joints[p] if p >= 0 else 0)
        world.append(local if p < 0 else world[p] @ local)
    posed_joints = np.array([w[:3, 3] for w in world])
    skin = [w.copy() for w in world]
    for i in range(24):
        skin[i][:3, 3] -= world[i][:3, :3] @ joints[i]
    verts = np.zeros_like(v)
    for n in range(v.shape[0]):
        t = sum(data["weights"][n, j] * skin[j] for j in range(24))
        verts[n] = t[:3, :3] @ v[n] + t[:3, 3]
    extra = verts[list(smpl_mod.EXTRA_VERTEX_IDS)]
    all_j = np.concatenate([posed_joints, extra])
    return verts, np.concatenate([all_j[list(smpl_mod.SMPL_TO_OPENPOSE)], j19 @ verts])


def test_skinning_matches_a_textbook_reference(smpl_files):
    d, arrays, j19 = smpl_files
    model = smpl_mod.SMPL(read_smpl(d / "SMPL_NEUTRAL.pkl"), read_regressor(d / "SMPL_to_J19.pkl"))
    rng = np.random.default_rng(5)
    rot = random_rotmats(rng, 24)
    betas = torch.as_tensor(rng.normal(size=10), dtype=torch.float32)
    verts, joints = model(rot[None], betas[None])
    assert verts.shape == (1, NUM_VERTS, 3) and joints.shape == (1, 44, 3)
    ref_v, ref_j = reference_lbs(arrays, j19, rot.double().numpy(), betas.double().numpy())
    assert np.abs(verts[0].numpy() - ref_v).max() < 1e-4
    assert np.abs(joints[0].numpy() - ref_j).max() < 1e-4


def test_rest_pose_and_global_rotation(smpl_files):
    d, arrays, _j19 = smpl_files
    model = smpl_mod.SMPL(read_smpl(d / "SMPL_NEUTRAL.pkl"), read_regressor(d / "SMPL_to_J19.pkl"))
    eye = torch.eye(3).expand(1, 24, 3, 3)
    verts, _joints = model(eye, torch.zeros(1, 10))
    assert torch.allclose(verts[0], torch.as_tensor(arrays["v_template"], dtype=torch.float32), atol=1e-5)
    # a global rotation turns the whole body about the root joint
    r = random_rotmats(np.random.default_rng(2), 1)[0]
    rot = eye.clone()
    rot[0, 0] = r
    verts_r, _ = model(rot, torch.zeros(1, 10))
    root = torch.as_tensor(arrays["J_regressor"][0] @ arrays["v_template"], dtype=torch.float32)
    assert torch.allclose(verts_r[0], (verts[0] - root) @ r.T + root, atol=1e-5)


def test_rot6d_gives_proper_rotations():
    r = random_rotmats(np.random.default_rng(0), 50)
    assert torch.allclose(r @ r.transpose(1, 2), torch.eye(3).expand(50, 3, 3), atol=1e-5)
    assert torch.allclose(torch.det(r), torch.ones(50), atol=1e-5)
    assert torch.allclose(rot6d_to_rotmat(torch.tensor([[1.0, 0, 0, 0, 1, 0]]))[0], torch.eye(3))
