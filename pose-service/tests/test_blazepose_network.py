"""BlazePose's TF.js graphs translated to torch (graph_torch.py): the files, TF SAME padding, the layout-sensitive
ops, batching, and the oneDNN graph against the eager module.

Raw parity with TF.js on the same input tensors is checked by pose-service/parity/blazepose-parity.test.ts (it
runs TF.js); the committed TF.js poses are checked here through the whole pipeline (test_blazepose_backend.py).
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from posepool_worker.backends.blazepose import graph_torch
from posepool_worker.backends.blazepose.graph_torch import TFConv2d, depth_to_space_nchw, tf_same_conv_padding
from posepool_worker.backends.blazepose.network import LANDMARK_OUTPUTS, GraphNet, disagreement
from posepool_worker.backends.movenet.backend import model_dir
from posepool_worker.backends.movenet.tfjs_graph import ModelFileError, load_graph_model
from posepool_worker.runtime import disable_unusable_nnpack

REPO = Path(__file__).resolve().parents[2]
GRAPHS = ("blazepose-detector", "blazepose-lite", "blazepose-full", "blazepose-heavy")
SUPPORTED = {
    "Const", "Placeholder", "Identity", "_FusedConv2D", "Conv2D", "FusedDepthwiseConv2dNative", "DepthwiseConv2dNative",
    "Pad", "AddV2", "Relu", "Relu6", "Sigmoid", "MaxPool", "ResizeBilinear", "DepthToSpace", "Reshape", "ConcatV2",
    "Shape", "StridedSlice", "Pack",
}  # fmt: skip


def graph(name):
    return load_graph_model(model_dir(REPO) / f"{name}.json")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    disable_unusable_nnpack()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", GRAPHS)
def test_graph_files_read_with_their_signature_outputs(name):
    g = graph(name)
    assert g.input_shape[1:] == ((224, 224, 3) if name.endswith("detector") else (256, 256, 3))
    assert g.input_shape[0] == -1  # any batch
    if name.endswith("detector"):
        assert g.outputs == {"person": "Identity"}
    else:
        assert set(g.outputs) == {
            "ld_3d",
            "output_poseflag",
            "activation_heatmap",
            "activation_segmentation",
            "world_3d",
        }
        assert g.outputs["ld_3d"] == "Identity_2"
    assert {n.op for n in g.nodes.values()} <= SUPPORTED
    # float16 weights, dequantized: every float weight is exactly representable in float16
    floats = [w for w in g.weights.values() if w.dtype == np.float32]
    assert floats and all(np.array_equal(w.astype(np.float16).astype(np.float32), w) for w in floats)


def test_movenet_files_still_read_the_same():
    g = load_graph_model(model_dir(REPO) / "movenet-lightning.json")
    assert g.output_name == "Identity" and g.outputs == {"Identity": "Identity"}


def test_same_padding_grows_the_kernel_in_front_for_strided_convs():
    torch.manual_seed(0)
    x = torch.randn(2, 6, 16, 16)
    w = torch.randn(6, 1, 3, 3)
    b = torch.randn(6)
    weight, padding = tf_same_conv_padding(w, (16, 16), 2)
    assert weight.shape[-2:] == (4, 4) and padding == (1, 1)
    with torch.no_grad():
        ours = TFConv2d(weight, b, 2, padding, 6, "")(x)
        tf_same = F.conv2d(F.pad(x, (0, 1, 0, 1)), w, b, stride=2, groups=6)  # TF: nothing before, one after
        symmetric = F.conv2d(x, w, b, stride=2, padding=1, groups=6)
    assert ours.shape == (2, 6, 8, 8)
    assert torch.allclose(ours, tf_same, atol=1e-5)
    assert not torch.allclose(ours, symmetric, atol=1e-2)
    # stride 1 (and odd sizes): plain symmetric padding, the kernel unchanged
    assert tf_same_conv_padding(w, (16, 16), 1)[1] == (1, 1)
    assert tf_same_conv_padding(torch.randn(6, 1, 5, 5), (15, 15), 2)[0].shape[-1] == 5


def test_relu6_clamps():
    conv = TFConv2d(torch.ones(1, 1, 1, 1) * 10, torch.zeros(1), 1, (0, 0), 1, "relu6")
    with torch.no_grad():
        y = conv(torch.tensor([[[[-1.0, 0.3, 1.0, 2.0]]]]))
    assert y.flatten().tolist() == pytest.approx([0.0, 3.0, 6.0, 6.0])


def test_depth_to_space_is_tensorflows_dcr_order():
    rng = np.random.default_rng(0)
    nhwc = rng.standard_normal((2, 3, 4, 12)).astype(np.float32)
    bs, c = 2, 3
    expected = np.zeros((2, 6, 8, c), np.float32)  # TF: out[b, h*bs+i, w*bs+j, k] = in[b, h, w, (i*bs+j)*C + k]
    for i in range(bs):
        for j in range(bs):
            expected[:, i::bs, j::bs, :] = nhwc[..., (i * bs + j) * c : (i * bs + j + 1) * c]
    got = depth_to_space_nchw(torch.from_numpy(nhwc).permute(0, 3, 1, 2), bs).permute(0, 2, 3, 1).numpy()
    assert np.array_equal(got, expected)


def test_pads_before_valid_convs_are_folded_into_them():
    g = graph("blazepose-detector")
    gm = graph_torch.graph_module(g, ["person"])
    pads = [n for n in gm.graph.nodes if n.target is F.pad]
    assert pads == []  # the detector's 8 zero Pads all feed VALID convs
    convs = [m for m in gm.modules() if isinstance(m, TFConv2d)]
    assert any(m.padding == (2, 2) and m.weight.shape[-1] == 5 for m in convs)  # zero_padding2d_2 (2, 2) + 5x5 VALID


def test_heavy_channel_padding_stays_a_pad():
    gm = graph_torch.graph_module(graph("blazepose-heavy"), ["ld_3d"])
    assert any(n.target is F.pad for n in gm.graph.nodes)


def test_unknown_outputs_and_ops_are_model_file_errors():
    g = graph("blazepose-lite")
    with pytest.raises(ModelFileError, match="no output"):
        graph_torch.graph_module(g, ["nope"])
    broken = copy.copy(g)
    broken.nodes = dict(g.nodes)
    name = next(n for n, node in g.nodes.items() if node.op == "MaxPool")
    broken.nodes[name] = graph_torch.Node(name, "FancyPool", g.nodes[name].inputs, {})
    with pytest.raises(ModelFileError, match="FancyPool"):
        graph_torch.graph_module(broken, ["ld_3d"])


@pytest.fixture(scope="module", params=GRAPHS[:2])
def nets(request):
    g = graph(request.param)
    outputs = ("person",) if request.param.endswith("detector") else LANDMARK_OUTPUTS
    kind = "detector" if request.param.endswith("detector") else "landmarks"
    eager = GraphNet(g, outputs, kind)
    return request.param, eager, copy.deepcopy(eager).optimize_for_cpu()


def test_output_shapes_and_batch_independence(nets):
    name, eager, _ = nets
    s = eager.input_size
    x = torch.rand(3, s, s, 3, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        together = eager(x)
        alone = [eager(x[i : i + 1]) for i in range(3)]
    if name.endswith("detector"):
        assert [tuple(t.shape) for t in together] == [(3, 2254, 13)]
    else:
        assert [tuple(t.shape) for t in together] == [(3, 195), (3, 1), (3, 39, 64, 64), (3, 117)]
        assert float(together[1].min()) >= 0 and float(together[1].max()) <= 1  # pose flag: a sigmoid
    for k in range(3):
        for t, a in zip(together, alone[k]):
            scale = max(1.0, float(a.abs().max()))
            assert float((t[k : k + 1] - a).abs().max()) / scale < 1e-4


def test_onednn_graph_agrees_with_eager(nets):
    name, eager, optimized = nets
    if int(torch.__version__.split(".")[0]) >= 2:
        assert isinstance(optimized.body, torch.jit.ScriptModule)  # pyright: ignore[reportPrivateImportUsage]
    # torch 1.13 (Debian's) may freeze a graph that disagrees: the check at load then keeps the eager body.
    # Either way, what is served agrees with the eager module.
    low = -1.0 if name.endswith("detector") else 0.0
    with torch.no_grad():
        assert disagreement(eager.body, optimized.body, eager.input_size, low) < 1e-4
