"""Checkpoint files: official containers load, hostile pickles run nothing, mismatches and OOM are StartupErrors."""

import collections
import os

import pytest
import torch
import torch.nn as nn

from posepool_worker.backends.topdown import checkpoints
from posepool_worker.errors import StartupError
from test_topdown_fakes import CfgNode, fake_modules, write_hmr2_checkpoint, write_vitpose_checkpoint


class Evil:
    """Unpickling this would run a shell command (the classic pickle attack)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_mmpose_container_with_floats_in_meta_loads(tmp_path):
    """torch 1.13's weights_only unpickler rejects floats (the optimizer's lr); the restricted one takes over."""
    shapes = {"backbone.pos_embed": torch.Size([1, 5, 4]), "keypoint_head.final_layer.bias": torch.Size([17])}
    state = write_vitpose_checkpoint(tmp_path / "v.pth", shapes)
    obj = checkpoints.read_checkpoint(tmp_path / "v.pth", "vitpose-s", "hint")
    assert obj["meta"]["epoch"] == 210 and obj["optimizer"]["param_groups"][0]["lr"] == 5e-4
    sd = checkpoints.state_dict_of(obj, tmp_path / "v.pth", "vitpose-s", "hint")
    assert all(torch.equal(sd[k], v) for k, v in state.items())


def test_lightning_checkpoint_with_a_yacs_config_loads_without_yacs(tmp_path):
    shapes = {"backbone.pos_embed": torch.Size([1, 5, 4])}
    state = write_hmr2_checkpoint(tmp_path / "h.ckpt", shapes)
    obj = checkpoints.read_checkpoint(tmp_path / "h.ckpt", "hmr2", "hint")
    assert obj["pytorch-lightning_version"] == "2.0.0" and obj["global_step"] == 1000000
    cfg = obj["hyper_parameters"]["cfg"]
    assert isinstance(cfg, checkpoints.Opaque) and cfg.qualname == "yacs.config.CfgNode"
    assert cfg["MODEL"]["IMAGE_SIZE"] == 256  # the items survive as data
    assert torch.equal(obj["state_dict"]["backbone.pos_embed"], state["backbone.pos_embed"])


def test_a_hostile_checkpoint_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"state_dict": collections.OrderedDict(w=torch.zeros(2)), "payload": Evil(marker)}, tmp_path / "e.pth")
    obj = checkpoints.read_checkpoint(tmp_path / "e.pth", "hmr2", "hint")
    assert not marker.exists()
    assert isinstance(obj["payload"], checkpoints.Opaque) and obj["payload"].qualname.endswith(".system")
    # the plain unpickler WOULD have run it: the test's payload is real
    torch.load(tmp_path / "e.pth", weights_only=False)
    assert marker.exists()


def test_restricted_unpickler_refuses_reconstructing_foreign_classes(tmp_path):
    with fake_modules(yacs__config={"CfgNode": CfgNode}):
        torch.save({"state_dict": {"w": torch.ones(1)}, "cfg": CfgNode(a=1)}, tmp_path / "c.pth")
    obj = checkpoints.load_restricted(tmp_path / "c.pth")
    assert obj["cfg"]["a"] == 1 and isinstance(obj["cfg"], checkpoints.Opaque)


def test_unreadable_files_are_model_files_missing(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(StartupError) as err:
        checkpoints.read_checkpoint(bad, "vitpose-b", "delete it and download again")
    assert err.value.type == "ModelFilesMissing" and "bad.pth" in err.value.message
    assert err.value.hint == "delete it and download again"
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(StartupError) as err:
        checkpoints.state_dict_of(checkpoints.read_checkpoint(tmp_path / "list.pth", "m", "h"), tmp_path, "m", "h")
    assert "no state_dict" in err.value.message


class Tiny(nn.Module):
    def __init__(self, device=None):
        super().__init__()
        self.a = nn.Linear(3, 4, device=device)
        self.bn = nn.BatchNorm1d(4, device=device)


def test_materialize_loads_strictly_and_reports_mismatches(tmp_path):
    good = Tiny().state_dict()
    net = checkpoints.materialize(Tiny, good, torch.device("cpu"), "m", tmp_path, "h")
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    assert torch.equal(net.a.weight, good["a.weight"])
    bad = dict(good)
    bad.pop("bn.running_mean")
    bad["extra.weight"] = torch.zeros(1)
    bad["a.weight"] = torch.zeros(5, 3)
    with pytest.raises(StartupError) as err:
        checkpoints.materialize(Tiny, bad, torch.device("cpu"), "vitpose-b", tmp_path, "h")
    msg = err.value.message
    assert err.value.type == "ModelFilesMissing"
    assert "1 missing: bn.running_mean" in msg and "1 unexpected: extra.weight" in msg
    assert "a.weight (5, 3) != (4, 3)" in msg


def test_cuda_out_of_memory_at_load_is_a_startup_error(tmp_path, monkeypatch):
    def oom(self, device):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 7.79 GiB total capacity)")

    monkeypatch.setattr(nn.Module, "to_empty", oom)
    with pytest.raises(StartupError) as err:
        checkpoints.materialize(Tiny, Tiny().state_dict(), torch.device("cpu"), "hmr2", tmp_path, "h")
    assert err.value.type == "OutOfMemory"
    assert "POSE_WORKERS" in err.value.hint and "POSE_BATCH_SIZE" in err.value.hint
    assert checkpoints.is_cuda_oom(RuntimeError("CUDA out of memory.")) and not checkpoints.is_cuda_oom(ValueError("x"))
