"""The synthetic TEST DOUBLE backend: deterministic output from the image, fault parsing, once-markers."""

import numpy as np
import pytest

from posepool_worker.backends.synthetic import SyntheticBackend, parse_faults, pose_image
from posepool_worker.errors import StartupError


def test_pose_is_deterministic_scaled_into_the_image_with_bbox_from_keypoints():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (120, 200, 3), dtype=np.uint8)
    a, b = pose_image(image), pose_image(image.copy())
    assert a == b
    kps = np.array(a["keypoints"])
    assert kps.shape == (17, 3)
    assert (kps[:, 0] >= 0).all() and (kps[:, 0] < 200).all() and (kps[:, 1] >= 0).all() and (kps[:, 1] < 120).all()
    x, y, w, h = a["bbox"]
    assert x == pytest.approx(kps[:, 0].min()) and y == pytest.approx(kps[:, 1].min())
    assert x + w == pytest.approx(kps[:, 0].max(), abs=0.02) and y + h == pytest.approx(kps[:, 1].max(), abs=0.02)
    assert a["score"] == pytest.approx(kps[:, 2].mean(), abs=1e-3)


def test_scores_follow_image_content():
    dark = pose_image(np.zeros((100, 100, 3), np.uint8))
    bright = pose_image(np.full((100, 100, 3), 255, np.uint8))
    assert dark["score"] == pytest.approx(0.25) and bright["score"] == pytest.approx(1.0)
    assert dark["keypoints"][0][:2] == bright["keypoints"][0][:2]  # geometry depends on size only


def test_detect_returns_one_person_per_frame_and_frame_error_for_the_faulty_index():
    backend = SyntheticBackend(parse_faults("frame_error=5"))
    images = [np.zeros((50, 60, 3), np.uint8)] * 3
    out = backend.detect(images, {"indices": [4, 5, 6]})
    assert len(out[0]) == 1 and len(out[2]) == 1
    assert out[1].code == "INFERENCE_FAILED" and "frame 5" in out[1].message


def test_batch_faults_fire_on_the_kth_call_only():
    backend = SyntheticBackend(parse_faults("memory_error_on_batch=2,cuda_oom_on_batch=3"))
    img = [np.zeros((10, 10, 3), np.uint8)]
    backend.detect(img, {"indices": [0]})
    with pytest.raises(MemoryError):
        backend.detect(img, {"indices": [1]})
    with pytest.raises(RuntimeError, match="CUDA out of memory"):
        backend.detect(img, {"indices": [2]})
    assert len(backend.detect(img, {"indices": [3]})) == 1


def test_once_marker_makes_a_fault_fire_once_across_instances(tmp_path):
    spec = f"frame_error=0,once={tmp_path / 'm'}"
    img = [np.zeros((10, 10, 3), np.uint8)]
    first = SyntheticBackend(parse_faults(spec)).detect(img, {"indices": [0]})
    second = SyntheticBackend(parse_faults(spec)).detect(img, {"indices": [0]})
    assert isinstance(first[0], Exception) and isinstance(second[0], list)
    assert (tmp_path / "m.frame_error").exists()


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ("nosuchfault", "unknown synthetic fault"),
        ("crash_on_batch", "needs a value"),
        ("crash_on_batch=x", "integer"),
        ("startup_crash=1", "takes no value"),
    ],
)
def test_bad_fault_specs_are_startup_errors(spec, fragment):
    with pytest.raises(StartupError) as info:
        parse_faults(spec)
    assert info.value.type == "InvalidFaults" and fragment in info.value.message


def test_fault_spec_parsing():
    assert parse_faults(" infer_ms=5 , print_stdout,once=/tmp/x ") == {
        "infer_ms": 5,
        "print_stdout": True,
        "once": "/tmp/x",
    }
    assert parse_faults("") == {} and parse_faults(None) == {}
