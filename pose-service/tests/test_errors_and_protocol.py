"""Error types, the install-hint table, and parity of the Python side with protocol.json."""

import ast
from pathlib import Path

import pytest

from posepool_worker import bootstrap, protocol
from posepool_worker.backends import BACKENDS, backend_class
from posepool_worker.errors import FrameError, StartupError, hint_for_missing_module

PACKAGE = Path(__file__).resolve().parents[1] / "posepool_worker"


@pytest.mark.parametrize(
    "module, pip_name, apt_name",
    [
        ("cv2", "opencv-python-headless", "python3-opencv"),
        ("numpy", "numpy", "python3-numpy"),
        ("torch", "torch", "python3-torch"),
        ("torch._C", "torch", "python3-torch"),
    ],
)
def test_missing_module_hints_name_setup_pip_and_apt(module, pip_name, apt_name):
    hint = hint_for_missing_module(module)
    assert "npm run setup" in hint
    assert f"pip install {pip_name}" in hint
    assert f"apt-get install {apt_name}" in hint


def test_unknown_module_hint_still_says_how():
    assert hint_for_missing_module("somepkg") == "run `npm run setup`, or install it: pip install somepkg"


def test_frame_error_refuses_codes_outside_protocol_json():
    with pytest.raises(ValueError):
        FrameError("NOT_A_CODE", "x")
    assert FrameError("OUT_OF_MEMORY", "m").to_json() == {"code": "OUT_OF_MEMORY", "message": "m"}


def test_every_frame_error_code_in_the_package_exists_in_protocol_json():
    used = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", None) == "FrameError"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                used.add(node.args[0].value)
    assert used, "expected FrameError(...) calls in the package"
    assert used <= set(protocol.FRAME_ERROR_CODES), used - set(protocol.FRAME_ERROR_CODES)


def test_bootstrap_literal_matches_protocol_json():
    assert protocol.NOTIFICATIONS["startupFailed"] == bootstrap.STARTUP_FAILED


def test_every_model_has_a_registered_backend_and_a_keypoint_set():
    for name, spec in protocol.MODELS.items():
        assert spec["backend"] in BACKENDS, name
        assert spec["keypointSet"] in protocol.KEYPOINT_SETS, name


def test_every_model_declares_the_extras_its_backend_adds():
    for name, spec in protocol.MODELS.items():
        cls = backend_class(name)
        assert list(cls.extras) == spec.get("extras", []), name
        for extra in cls.extras:
            declared = protocol.PERSON_EXTRAS[extra]
            assert declared["description"] and declared["schema"]["type"], extra
            assert declared.get("keypointSet", "coco17") in protocol.KEYPOINT_SETS, extra


def test_unknown_model_is_a_startup_error_listing_valid_names():
    with pytest.raises(StartupError) as info:
        backend_class("movenet-thunderr")
    assert info.value.type == "UnknownModel"
    assert "movenet-thunder" in info.value.hint and "vitpose-b" in info.value.hint


def test_synthetic_backend_resolves():
    from posepool_worker.backends.synthetic import SyntheticBackend

    assert backend_class("synthetic") is SyntheticBackend
    assert SyntheticBackend.keypoints == protocol.KEYPOINT_SETS["coco17"]["names"]


def test_describe_failure_for_module_not_found():
    try:
        import cv2_does_not_exist  # noqa: F401
    except ModuleNotFoundError as err:
        failure = bootstrap.describe_failure(err, "cv2_does_not_exist")
    assert failure["type"] == "ModuleNotFoundError"
    assert failure["missingModule"] == "cv2_does_not_exist"
    assert failure["message"] == "No module named 'cv2_does_not_exist'"
    assert "Traceback" in failure["traceback"]


def test_describe_failure_for_libgl_import_error_recommends_headless_opencv():
    err = ImportError("libGL.so.1: cannot open shared object file: No such file or directory")
    failure = bootstrap.describe_failure(err, "cv2")
    assert failure["missingModule"] == "cv2" and "opencv-python-headless" in failure["hint"]


def test_describe_failure_for_startup_error_keeps_its_type_and_hint():
    err = StartupError("ModelFilesMissing", "no weights", "npm run models:download -- vitpose-b", "x")
    failure = bootstrap.describe_failure(err, None)
    assert (failure["type"], failure["message"], failure["hint"], failure["missingModule"]) == (
        "ModelFilesMissing",
        "no weights",
        "npm run models:download -- vitpose-b",
        "x",
    )
