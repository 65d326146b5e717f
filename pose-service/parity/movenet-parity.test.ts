// Parity of the Python MoveNet backend with the reference, TensorFlow.js (WASM backend), on the same
// graph-model files and the same int32 input tensors (committed in pose-service/tests/fixtures/movenet:
// letterboxed still images and video frames, and the tracking crops derived from them).
// Tolerances from the issue: every keypoint's y and x within 0.002 (normalized), every score within 0.01.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { describeIfReady, testPython, whyNoRealWorkers } from '../../workers/test/support/prerequisites.js';
import { FIXTURE_DIR, MODELS, REPO_ROOT, runFixture } from './movenet_tfjs.mjs';

type Keypoints = number[][]; // 17 x [y, x, score]
const COORD_TOL = 0.002;
const SCORE_TOL = 0.01;
const MODEL_NAMES = Object.keys(MODELS) as string[];

const python = testPython() ?? 'python3';

function runHelper(): Promise<{ models: Record<string, { outputs: Keypoints[] }> }> {
  const helper = path.join(REPO_ROOT, 'pose-service', 'parity', 'movenet_parity_helper.py');
  return new Promise((resolve, reject) => {
    const child = spawn(python, [helper, ...MODEL_NAMES], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 180_000);
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`parity helper failed (exit ${code}): ${err}`));
      else resolve(JSON.parse(out));
    });
  });
}

function maxDiffs(a: Keypoints[], b: Keypoints[]) {
  let coord = 0;
  let score = 0;
  for (let i = 0; i < a.length; i++) {
    for (let k = 0; k < 17; k++) {
      coord = Math.max(coord, Math.abs(a[i][k][0] - b[i][k][0]), Math.abs(a[i][k][1] - b[i][k][1]));
      score = Math.max(score, Math.abs(a[i][k][2] - b[i][k][2]));
    }
  }
  return { coord, score };
}

describeIfReady('MoveNet: Python backend vs TF.js-WASM', whyNoRealWorkers(), () => {
  let pythonOut: Record<string, { outputs: Keypoints[] }>;
  const tfjsOut: Record<string, { index: { name: string }[]; outputs: Keypoints[] }> = {};

  beforeAll(async () => {
    // The Python helper and TF.js run at the same time (the helper uses one thread).
    const python_ = runHelper();
    for (const model of MODEL_NAMES) tfjsOut[model] = await runFixture(model);
    pythonOut = (await python_).models;
  }, 240_000);

  for (const model of MODEL_NAMES) {
    it(`${model}: every keypoint within ${COORD_TOL} (y, x) and ${SCORE_TOL} (score)`, () => {
      const py = pythonOut[model].outputs;
      const ref = tfjsOut[model].outputs;
      expect(ref.length).toBeGreaterThanOrEqual(5);
      expect(py.length).toBe(ref.length);
      const perInput = ref.map((r, i) => ({ name: tfjsOut[model].index[i].name, ...maxDiffs([py[i]], [r]) }));
      const worst = maxDiffs(py, ref);
      console.log(
        `[movenet-parity] ${model}: ${ref.length} inputs, max |dy|,|dx| = ${worst.coord.toExponential(2)}, max |dscore| = ${worst.score.toExponential(2)}`,
      );
      for (const p of perInput) {
        expect(p.coord, `${model} ${p.name}: y/x`).toBeLessThanOrEqual(COORD_TOL);
        expect(p.score, `${model} ${p.name}: score`).toBeLessThanOrEqual(SCORE_TOL);
      }
    });

    it(`${model}: the committed TF.js reference (used by pytest) matches TF.js run now`, () => {
      const committed = JSON.parse(fs.readFileSync(path.join(FIXTURE_DIR, `tfjs-${model}.json`), 'utf8')).outputs;
      const d = maxDiffs(committed, tfjsOut[model].outputs);
      expect(d.coord).toBeLessThan(1e-5);
      expect(d.score).toBeLessThan(1e-5);
    });

    it(`${model}: the fixture holds real poses (not an all-zero or degenerate input set)`, () => {
      const ref = tfjsOut[model].outputs;
      const poseScores = ref.map((kps) => {
        const valid = kps.map((k) => k[2]).filter((s) => s > 0.2);
        return valid.length ? valid.reduce((a, b) => a + b, 0) / valid.length : 0;
      });
      expect(poseScores.filter((s) => s >= 0.25).length).toBeGreaterThanOrEqual(ref.length - 1);
    });
  }
});
