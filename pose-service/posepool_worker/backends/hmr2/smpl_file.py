"""Reading the SMPL model pickle (and SMPL_to_J19.pkl) without chumpy, scipy, or a plain unpickler.

The official SMPL file (basicModel_neutral_lbs_10_207_0_v1.0.0.pkl, used as SMPL_NEUTRAL.pkl) is a Python 2
pickle of a dict whose arrays are partly chumpy ``Ch`` objects (v_template, shapedirs, posedirs, ...) and whose
``J_regressor`` is a scipy.sparse ``csc_matrix``. ``SMPLUnpickler`` rebuilds exactly those:

- numpy arrays and dtypes (allow-listed numpy reconstruction functions),
- any ``chumpy.*`` class -> ``ChumpyArray`` (keeps the pickled state's ``x`` array: a Ch's value),
- ``scipy.sparse.*`` csc/csr matrices -> ``SparseMatrix`` (turned into a dense numpy array),
- ``copy_reg._reconstructor`` only for those two classes; ``_codecs.encode`` (bytes in Python 3 pickles);
  builtin containers (chumpy's state holds sets).

Anything else in the file is refused (UnpicklingError): no code from the file runs. A numpy-only
``SMPL_NEUTRAL.npz`` with the same keys is read as well (``np.load(allow_pickle=False)``).
"""

from __future__ import annotations

import codecs
import importlib
import pickle
from pathlib import Path

import numpy as np

SMPL_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")


class ChumpyArray:
    """A chumpy Ch as pickled: its state dict holds the value in ``x`` (None for derived chumpy objects,
    which the SMPL keys posepool reads are not)."""

    value = None

    def __setstate__(self, state):
        x = state.get("x") if isinstance(state, dict) else None
        self.value = None if x is None else np.asarray(x)


class SparseMatrix:
    """A scipy.sparse csc/csr matrix as pickled (state: data, indices, indptr, _shape or shape, format)."""

    fmt = "csc"

    def __setstate__(self, state):
        if not isinstance(state, dict):
            raise pickle.UnpicklingError("sparse matrix without a state dict")
        shape = state.get("_shape") or state.get("shape")
        if shape is None:
            raise pickle.UnpicklingError("sparse matrix without a shape")
        shape = tuple(shape)
        data, indices, indptr = (np.asarray(state[k]) for k in ("data", "indices", "indptr"))
        fmt = state.get("format", self.fmt)
        dense = np.zeros(shape, dtype=np.float64)
        for j in range(len(indptr) - 1):
            rows = indices[indptr[j] : indptr[j + 1]]
            vals = data[indptr[j] : indptr[j + 1]]
            if fmt == "csc":
                dense[rows, j] = vals
            elif fmt == "csr":
                dense[j, rows] = vals
            else:
                raise pickle.UnpicklingError(f"unsupported sparse format {fmt!r}")
        self.value = dense


class _CSR(SparseMatrix):
    fmt = "csr"


def _reconstructor(cls, base, state):
    if cls in (ChumpyArray, SparseMatrix, _CSR):
        return cls.__new__(cls)
    raise pickle.UnpicklingError(f"refusing to reconstruct {cls!r}")


_BUILTINS = {"object": object, "set": set, "frozenset": frozenset, "list": list, "dict": dict, "tuple": tuple}


def _numpy_core(submodule: str):
    """numpy.core.<submodule>, by name as pickles name it (numpy 2 keeps numpy.core importable for old pickles;
    numpy's type stubs describe neither numpy 1's nor numpy 2's)."""
    return importlib.import_module(f"numpy.core.{submodule}")


class SMPLUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if module.startswith("chumpy"):
            return ChumpyArray
        if module.startswith("scipy.sparse"):
            if name == "csc_matrix":
                return SparseMatrix
            if name == "csr_matrix":
                return _CSR
        if (module, name) in (("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor")):
            return _reconstructor
        if module in ("__builtin__", "builtins") and name in _BUILTINS:
            return _BUILTINS[name]
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name in ("_reconstruct", "scalar"):
            return getattr(_numpy_core("multiarray"), name)
        if module in ("numpy.core.numeric", "numpy._core.numeric") and name == "_frombuffer":
            return _numpy_core("numeric")._frombuffer
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        if (module, name) == ("_codecs", "encode"):  # Python 3 protocol-2 pickles store bytes this way
            return codecs.encode
        raise pickle.UnpicklingError(f"unexpected class {module}.{name} in an SMPL file")


def _plain(value, key: str = "value"):
    if isinstance(value, (ChumpyArray, SparseMatrix)):
        if value.value is None:
            raise ValueError(f"{key} is a chumpy expression, not an array")
        return value.value
    return value


def read_pickle(path: Path):
    """Unpickle an SMPL-related file (Python 2 pickles included) with ``SMPLUnpickler``."""
    with open(path, "rb") as f:
        return SMPLUnpickler(f, encoding="latin1").load()


def read_smpl(path: Path) -> dict[str, np.ndarray]:
    """The SMPL arrays (``SMPL_KEYS``) from a .pkl (official) or .npz (converted) file, as numpy arrays."""
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            raw = {k: z[k] for k in z.files}
    else:
        raw = read_pickle(path)
        if not isinstance(raw, dict):
            raise ValueError(f"expected a dict, found {type(raw).__name__}")
    missing = [k for k in SMPL_KEYS if k not in raw]
    if missing:
        raise ValueError(f"missing keys {missing}")
    return {k: np.asarray(_plain(raw[k], k)) for k in SMPL_KEYS}


def read_regressor(path: Path) -> np.ndarray:
    """SMPL_to_J19.pkl: a (19, 6890) joint regressor (plain numpy pickle or a sparse matrix)."""
    return np.asarray(_plain(read_pickle(path)), dtype=np.float32)
