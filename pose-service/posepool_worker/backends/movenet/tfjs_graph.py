"""Reader for TensorFlow.js graph-model files (model.json + weight shards).

Pure numpy. Gives the graph's nodes (GraphDef as JSON) and every weight as a float32 / int32 array,
dequantized the way tfjs-core's io.decodeWeights does (float16 is IEEE half, little-endian; uint8 /
uint16 are ``v * scale + min``). Any problem with the files raises ``ModelFileError`` naming the
file, so the backend can turn it into a StartupError with a fix.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


class ModelFileError(Exception):
    """The model's files are absent, unreadable or inconsistent. ``path`` names the culprit."""

    def __init__(self, path: Path, message: str):
        super().__init__(f"{path}: {message}")
        self.path = Path(path)
        self.detail = message


_DTYPE_BYTES = {"float32": 4, "int32": 4, "bool": 1}
_QUANT_DTYPES = {"float16": ("<f2", 2), "uint8": ("u1", 1), "uint16": ("<u2", 2)}
_PLAIN_DTYPES = {"float32": "<f4", "int32": "<i4", "bool": "u1"}


@dataclass(frozen=True)
class Node:
    name: str
    op: str
    inputs: tuple[str, ...]
    attr: dict

    def attr_str(self, key: str) -> str | None:
        v = self.attr.get(key)
        return None if v is None or "s" not in v else base64.b64decode(v["s"]).decode()

    def attr_ints(self, key: str) -> list[int]:
        v = self.attr.get(key, {}).get("list", {})
        return [int(i) for i in v.get("i", [])]

    def attr_strs(self, key: str) -> list[str]:
        v = self.attr.get(key, {}).get("list", {})
        return [base64.b64decode(s).decode() for s in v.get("s", [])]

    def attr_bool(self, key: str) -> bool:
        return bool(self.attr.get(key, {}).get("b", False))


@dataclass
class GraphModel:
    json_path: Path
    nodes: dict[str, Node]  # in graph order (dicts keep insertion order)
    weights: dict[str, np.ndarray]
    input_name: str
    input_shape: tuple[int, ...]
    output_name: str  # the first signature output's node
    outputs: dict[str, str] = field(default_factory=dict)  # signature output key -> node name, e.g. ld_3d -> Identity_2

    def node(self, name: str) -> Node:
        try:
            return self.nodes[name]
        except KeyError:
            raise ModelFileError(self.json_path, f"graph has no node {name!r}") from None

    def weight(self, name: str) -> np.ndarray:
        try:
            return self.weights[name]
        except KeyError:
            raise ModelFileError(self.json_path, f"weights manifest has no entry {name!r}") from None

    def consumers(self, name: str) -> list[Node]:
        return [n for n in self.nodes.values() if any(i.split(":")[0].lstrip("^") == name for i in n.inputs)]


def _weight_nbytes(spec: dict) -> int:
    count = int(np.prod(spec["shape"], dtype=np.int64)) if spec["shape"] else 1
    q = spec.get("quantization")
    if q:
        if q.get("dtype") not in _QUANT_DTYPES:
            raise ValueError(f"unsupported quantization dtype {q.get('dtype')!r} for {spec['name']}")
        return count * _QUANT_DTYPES[q["dtype"]][1]
    if spec["dtype"] not in _DTYPE_BYTES:
        raise ValueError(f"unsupported dtype {spec['dtype']!r} for {spec['name']}")
    return count * _DTYPE_BYTES[spec["dtype"]]


def _decode_weight(spec: dict, buf: bytes, offset: int) -> np.ndarray:
    shape = tuple(int(d) for d in spec["shape"])
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    q = spec.get("quantization")
    if q:
        np_dtype, _ = _QUANT_DTYPES[q["dtype"]]
        raw = np.frombuffer(buf, np_dtype, count, offset)
        if q["dtype"] == "float16":
            arr = raw.astype(np.float32)
        else:
            arr = (raw.astype(np.float32) * np.float32(q["scale"]) + np.float32(q["min"])).astype(np.float32)
        if spec["dtype"] == "int32":
            arr = arr.round().astype(np.int32)
    else:
        arr = np.frombuffer(buf, _PLAIN_DTYPES[spec["dtype"]], count, offset).copy()
    return arr.reshape(shape)


def load_graph_model(json_path: Path) -> GraphModel:
    """Read model.json and its weight shards; check sizes against the manifest."""
    json_path = Path(json_path)
    if not json_path.is_file():
        raise ModelFileError(json_path, "file not found")
    try:
        model = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(json_path, f"not valid JSON ({exc})") from None
    if not isinstance(model, dict) or model.get("format") != "graph-model":
        raise ModelFileError(json_path, "not a TensorFlow.js graph model (format != 'graph-model')")
    try:
        topology_nodes = model["modelTopology"]["node"]
        manifest = model["weightsManifest"]
        specs = [w for group in manifest for w in group["weights"]]
        paths = [p for group in manifest for p in group["paths"]]
        expected = sum(_weight_nbytes(s) for s in specs)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(json_path, f"malformed model.json ({exc!r})") from None

    chunks = []
    for rel in paths:
        shard = json_path.parent / rel
        if not shard.is_file():
            raise ModelFileError(shard, f"weight file not found (listed in the manifest of {json_path.name})")
        chunks.append(shard.read_bytes())
    buf = b"".join(chunks)
    if len(buf) != expected:
        names = ", ".join(str(json_path.parent / p) for p in paths)
        raise ModelFileError(
            json_path.parent / paths[0] if len(paths) == 1 else json_path.parent,
            f"weight data is {len(buf)} bytes but the manifest of {json_path.name} needs {expected} ({names})",
        )

    weights: dict[str, np.ndarray] = {}
    offset = 0
    for spec in specs:
        weights[spec["name"]] = _decode_weight(spec, buf, offset)
        offset += _weight_nbytes(spec)

    nodes: dict[str, Node] = {}
    for n in topology_nodes:
        nodes[n["name"]] = Node(n["name"], n["op"], tuple(n.get("input", [])), n.get("attr", {}))
    missing = [n.name for n in nodes.values() if n.op == "Const" and n.name not in weights]
    if missing:
        raise ModelFileError(json_path, f"{len(missing)} Const node(s) without weights, e.g. {missing[0]!r}")

    placeholders = [n for n in nodes.values() if n.op == "Placeholder"]
    if len(placeholders) != 1:
        raise ModelFileError(json_path, f"expected one input placeholder, found {len(placeholders)}")
    dims = placeholders[0].attr.get("shape", {}).get("shape", {}).get("dim", [])
    input_shape = tuple(int(d.get("size", -1)) for d in dims)
    signature = model.get("signature", {}).get("outputs", {})
    outputs = {
        key.split(":")[0]: str(spec.get("name", key) if isinstance(spec, dict) else key).split(":")[0]
        for key, spec in signature.items()
    } or {"Identity": "Identity"}
    for node_name in outputs.values():
        if node_name not in nodes:
            raise ModelFileError(json_path, f"graph has no output node {node_name!r}")
    output_name = next(iter(outputs.values()))
    return GraphModel(json_path, nodes, weights, placeholders[0].name, input_shape, output_name, outputs)
