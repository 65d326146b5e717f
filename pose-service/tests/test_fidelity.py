"""The fidelity report (pose-service/eval/fidelity.py, `npm run eval`): its measures on made-up poses, and a
reduced eval of the committed clips held to bounds set from the measured figures (BENCHMARKS.md "Fidelity").

The reduced eval is `npm run eval -- --max-frames 16`: the first 16 frames of each committed clip, batches of 8,
posed upright, turned 90/180/270 degrees and mirrored. To move a bound, run that, and copy its figures into
MEASURED with the reason in the commit message.
"""

from __future__ import annotations

import math
import sys
from typing import NamedTuple

import numpy as np
import pytest
import torch

from conftest import SERVICE_DIR

sys.path.insert(0, str(SERVICE_DIR / "eval"))
import fidelity

REDUCED_FRAMES = 16
SINGLE_PERSON = ("messi-pan.mp4", "messi-rot90.mp4")
UPRIGHT = ("messi-pan.mp4", "vtest-3s.mp4")  # clips whose people stand upright (messi-rot90 is shown sideways)
TURNS = ("rot90", "rot180", "rot270")
TURNED_WITHIN = 0.15  # torso lengths: a turned clip's poses, mapped back, median distance from the upright ones


class Figures(NamedTuple):
    detected: float  # detection rate, upright
    score: float  # mean pose score, upright
    inferences: float  # model inferences per frame, upright
    swaps: float | None  # L/R swaps per 100 frame pairs (None: not bounded)
    jitter: float | None  # torso lengths per frame on the stillest stretch (None: not bounded)
    consistency: dict  # transform -> median distance in torso lengths (None: not bounded)


def figures(detected, score, inferences, swaps, jitter, rot90, rot180, rot270, flip) -> Figures:
    turned = {"rot90": rot90, "rot180": rot180, "rot270": rot270, "flip": flip}
    return Figures(detected, score, inferences, swaps, jitter, turned)


# npm run eval -- --max-frames 16, 2026-12-07, this branch (BENCHMARKS.md "Fidelity"). vtest's 90/270 are not
# bounded: on that clip of several pedestrians they measure which one MoveNet picks, not how well it poses him.
# BlazePose finds a person in few of vtest's frames (its detector is made for people near the camera), too few for
# its consistency, swaps and jitter there to mean anything: only its detection, score and cost are bounded.
MEASURED = {
    "movenet-thunder": {
        "messi-pan.mp4": figures(1.0, 0.778, 1.125, 0.0, 0.011, 0.025, 0.025, 0.026, 0.032),
        "messi-rot90.mp4": figures(1.0, 0.605, 1.125, 0.0, 0.019, 0.028, 0.011, 0.012, 0.024),
        "vtest-3s.mp4": figures(1.0, 0.633, 1.125, 20.0, 0.200, None, 0.016, None, 0.034),
    },
    "movenet-lightning": {
        "messi-pan.mp4": figures(1.0, 0.676, 1.125, 0.0, 0.017, 0.053, 0.054, 0.055, 0.041),
        "messi-rot90.mp4": figures(1.0, 0.586, 1.125, 0.0, 0.025, 0.058, 0.006, 0.034, 1.139),
        "vtest-3s.mp4": figures(1.0, 0.579, 1.125, 6.7, 0.216, None, 0.027, None, 0.037),
    },
    "blazepose-lite": {
        "messi-pan.mp4": figures(1.0, 0.974, 1.125, 0.0, 0.026, 0.021, 0.020, 0.022, 0.038),
        "messi-rot90.mp4": figures(1.0, 0.976, 1.125, 0.0, 0.030, 0.022, 0.026, 0.019, 0.039),
        "vtest-3s.mp4": figures(0.188, 0.156, 1.75, None, None, None, None, None, None),
    },
    "blazepose-full": {
        "messi-pan.mp4": figures(1.0, 0.974, 1.125, 0.0, 0.028, 0.019, 0.019, 0.017, 0.031),
        "messi-rot90.mp4": figures(1.0, 0.976, 1.125, 0.0, 0.015, 0.017, 0.020, 0.021, 0.036),
        "vtest-3s.mp4": figures(0.125, 0.109, 1.438, None, None, None, None, None, None),
    },
    "blazepose-heavy": {
        "messi-pan.mp4": figures(1.0, 0.991, 1.125, 0.0, 0.015, 0.011, 0.014, 0.013, 0.025),
        "messi-rot90.mp4": figures(1.0, 0.991, 1.125, 0.0, 0.017, 0.013, 0.016, 0.016, 0.032),
        "vtest-3s.mp4": figures(0.25, 0.219, 1.438, None, None, None, None, None, None),
    },
}


# -- the measures, on made-up poses ---------------------------------------------------------------------


def stick(offset=(0.0, 0.0), score=0.9) -> np.ndarray:
    """A COCO-17 figure in pixels: left side at smaller x, torso 100 px (shoulder centre to hip centre)."""
    xy = np.array(
        [
            [100, 40], [95, 35], [105, 35], [90, 38], [110, 38],
            [80, 60], [120, 60], [75, 100], [125, 100], [72, 130], [128, 130],
            [85, 160], [115, 160], [83, 220], [117, 220], [82, 280], [118, 280],
        ],
        float,
    )  # fmt: skip
    return np.concatenate([xy + np.array(offset), np.full((17, 1), score)], axis=1)


@pytest.mark.parametrize("name", ["rot0", "rot90", "rot180", "rot270", "rot45", "rot135", "flip"])
def test_a_transformed_frame_maps_back_onto_the_upright_one(name):
    """transform() moves a bright spot where map_back() says it came from (any angle, mirrored too)."""
    h, w = 60, 90
    for x, y in [(20, 10), (70, 45)]:
        img = np.zeros((h, w, 3), np.uint8)
        img[y - 1 : y + 2, x - 1 : x + 2] = 255
        out = fidelity.transform(img, name)[..., 0].astype(float)
        i, j = np.unravel_index(np.argmax(out), out.shape)
        win = out[max(0, i - 2) : i + 3, max(0, j - 2) : j + 3]
        ii, jj = np.mgrid[max(0, i - 2) : i + 3, max(0, j - 2) : j + 3]
        kp = np.zeros((17, 3))
        kp[:, 0] = ((jj + 0.5) * win).sum() / win.sum()
        kp[:, 1] = ((ii + 0.5) * win).sum() / win.sum()
        back = fidelity.map_back(kp, name, h, w)
        assert back[0, :2] == pytest.approx([x + 0.5, y + 0.5], abs=0.6)


def test_a_mirrored_pose_gets_its_left_and_right_back():
    kp = stick()
    mirrored = np.stack([200 - kp[:, 0], kp[:, 1], kp[:, 2]], axis=1)[fidelity.FLIP_ORDER]  # as a model would see it
    assert np.allclose(fidelity.map_back(mirrored, "flip", 300, 200), kp)


def test_consistency_is_in_torso_lengths():
    a = stick()
    assert fidelity.torso_length(a) == pytest.approx(100)
    errors = fidelity.consistency([a, None, a], [stick((30, 40)), a, None])
    assert errors == pytest.approx(np.full(17, 0.5))  # one frame with both: 50 px = half a torso


def test_a_left_right_swap_between_frames_is_counted():
    a = stick()
    swapped = a.copy()
    swapped[[9, 10]] = a[[10, 9]]  # the wrists exchanged
    low = a.copy()
    low[[9, 10]] = a[[10, 9]]
    low[9, 2] = 0.1  # too unsure to count
    assert fidelity.lr_swaps([a, stick((2, 0)), swapped, swapped, None, a]) == (1, 3)
    assert fidelity.lr_swaps([a, low]) == (0, 1)


def test_jitter_is_measured_on_the_stillest_stretch():
    rng = np.random.default_rng(0)
    moving = [stick((10.0 * k, 0)) for k in range(10)]
    still = [stick(tuple(rng.normal(0, 1, 2))) for _ in range(10)]  # ~1 px of noise: ~0.01 torso lengths
    j = fidelity.jitter(moving + still + [None] + moving, window=8)
    assert j is not None and 10 <= j["frames"][0] <= 12 and j["frames"][1] - j["frames"][0] == 7
    assert 0.005 < j["median"] < 0.03
    assert fidelity.jitter([None] * 12, window=8) is None


# -- the reduced eval on the committed clips --------------------------------------------------------


@pytest.fixture(scope="module", params=fidelity.MODELS)
def report(request):
    """(model, {clip: evaluate_clip result}) for the committed clips' first REDUCED_FRAMES frames."""
    from posepool_worker.backends import backend_class
    from posepool_worker.backends.base import LoadContext

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as a worker with --threads 1; restored for the tests that follow
    try:
        ctx = LoadContext(
            model=request.param,
            device=torch.device("cpu"),
            threads=1,
            models_dir=SERVICE_DIR / ".models",
            repo_root=fidelity.REPO_ROOT,
        )
        backend = backend_class(request.param).load(ctx)
        results = {}
        for path in fidelity.clip_paths(None):
            frames = fidelity.read_clip(path, REDUCED_FRAMES)
            results[path.name] = fidelity.evaluate_clip(backend, frames, 8)
        yield request.param, results
    finally:
        torch.set_num_threads(threads)


def test_turned_clips_map_back_onto_the_upright_poses(report):
    """Issue 20: a clip turned 90, 180 or 270 degrees (as in a flip) is posed where the upright one is, within
    0.15 torso lengths (median), with a person in every frame. Before the turned search and the turned tracking
    crop, messi-pan turned 180 degrees was off by 0.68 torso lengths (Thunder)."""
    model, results = report
    for clip in SINGLE_PERSON:
        for t in TURNS:
            r = results[clip]["transforms"][t]
            assert r["median"] <= TURNED_WITHIN, f"{model} {clip} {t}: median {r['median']:.3f} torso lengths"
            assert r["detectionRate"] == 1.0, f"{model} {clip} {t}: a person in {r['detectionRate']:.0%} of frames"


def test_fidelity_stays_within_its_measured_bounds(report):
    """Each figure of the reduced eval against MEASURED, with room for other CPUs and torch versions: consistency
    at most twice the measured median or 0.05 more, whichever is larger; detection at most 10 points lower; mean
    score at most 0.05 lower; swaps at most 10 per 100 more; jitter at most 1.5 times (+0.01); and on the upright
    clips at most 5% more inferences per frame (the orientation search's cost)."""
    model, results = report
    failures = []

    def check(clip, what, value, bound, higher_is_worse=True):
        if (value > bound) if higher_is_worse else (value < bound):
            failures.append(f"{clip} {what}: {value:.3f} (bound {bound:.3f})")

    for clip, m in MEASURED[model].items():
        r = results[clip]
        check(clip, "detection rate", r["detectionRate"], m.detected - 0.1, higher_is_worse=False)
        check(clip, "mean score", r["meanScore"], m.score - 0.05, higher_is_worse=False)
        if m.swaps is not None:
            check(clip, "L/R swaps per 100", r["swaps"]["per100"], m.swaps + 10)
        if m.jitter is not None:
            check(clip, "jitter", r["jitter"]["median"], 1.5 * m.jitter + 0.01)
        check(clip, "inferences per frame", r["inferencesPerFrame"], m.inferences * (1.05 if clip in UPRIGHT else 1.25))
        for t, median in m.consistency.items():
            if median is not None:
                check(clip, f"{t} median", r["transforms"][t]["median"], max(2 * median, median + 0.05))
    assert not failures, f"{model}: " + "; ".join(failures)


def test_the_report_is_a_markdown_table(report):
    model, results = report
    settings = {"transforms": list(fidelity.TRANSFORMS), "maxFrames": REDUCED_FRAMES, "batch": 8}
    text = fidelity.markdown({"settings": settings, "clips": ["a.mp4"], "models": {model: results}})
    assert text.startswith("Fidelity, ") and "at most 16 frames per clip, batches of 8" in text
    lines = [line for line in text.splitlines() if line.startswith("|")]
    assert len(lines) == 2 + len(results)
    assert all(line.count("|") == lines[0].count("|") for line in lines)
    assert not any(math.isnan(results[c]["meanScore"]) for c in results)
