// Parity of the Python BlazePose backend with the reference, TensorFlow.js (WASM backend), on the same graph-model
// files: (1) each network on the very input tensors the Python backend made (its detector and landmark crops of
// every parity image), output by output; (2) the whole pipeline (detector, ROI, rotated crop, decoding) written
// out in blazepose_tfjs.mjs with tfjs-models' tf ops, from the same RGB images: the final 33 keypoints, world
// coordinates, visibilities and pose scores; (3) tracking over 8 consecutive video frames: the next ROI from the
// auxiliary landmarks as tfjs-models computes it, and each frame posed in that ROI by both.
// The images: pose-service/parity/blazepose_parity_helper.py (stills, the stills turned 90 and 180 degrees, video
// frames decoded by ffmpeg), written to a temporary folder by the helper.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { resolveFfmpeg } from '../../server/runtime/ffmpeg-path.js';
import { describeIfReady, testPython, whyNoRealWorkers } from '../../workers/test/support/prerequisites.js';
import {
  BlazePoseTfjs,
  FIXTURE_DIR,
  imageToTensor,
  LANDMARK_MODELS,
  LANDMARK_OUTPUTS,
  loadGraph,
  REPO_ROOT,
  readImages,
  roiFromPoints,
} from './blazepose_tfjs.mjs';
import { loadTf } from './movenet_tfjs.mjs';

interface Pose {
  score: number;
  keypoints: number[][]; // 33 x [x, y, z, visibility]
  world: number[][]; // 33 x [x, y, z]
  roi: { xCenter: number; yCenter: number; width: number; height: number; rotation: number };
  auxiliary: number[][];
}
interface HelperOutput {
  models: Record<string, { poses: Record<string, Pose | null>; sequence: (Pose | null)[] }>;
}

// Bounds. Raw outputs (float16 weights, float32 arithmetic in both): the detector's output relative to its largest
// magnitude (its box regressors reach ~6e5 on anchors far from anyone); the landmark outputs absolute, ld_3d in
// pixels of the 256x256 crop, the heatmap and pose flag 0..1, world_3d in metres.
// The inputs themselves: the Python crops (numpy, float32 as TF.js-WASM's Transform kernel) against tfjs-models' own
// (imageToTensor) on the same image and ROI.
const RAW_BOUNDS: Record<string, number> = {
  'detector input': 1e-6,
  'landmark input': 1e-6,
  'detector (relative)': 1e-5,
  ld_3d: 0.01,
  output_poseflag: 1e-4,
  activation_heatmap: 1e-4,
  world_3d: 1e-4,
};
// The whole pipeline: keypoints in pixels of the frame (x, y; z at the scale of x), visibility and pose score 0..1,
// world in metres.
const FINAL_BOUNDS = { xy: 0.5, z: 2.0, visibility: 1e-3, score: 1e-4, world: 1e-3 };

const python = testPython() ?? 'python3';

function whyNot(): string | null {
  const why = whyNoRealWorkers();
  if (why) return why;
  try {
    resolveFfmpeg();
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

function runHelper(out: string): Promise<HelperOutput> {
  const helper = path.join(REPO_ROOT, 'pose-service', 'parity', 'blazepose_parity_helper.py');
  const args = [helper, '--out', out, '--ffmpeg', resolveFfmpeg().path, ...LANDMARK_MODELS];
  return new Promise((resolve, reject) => {
    const child = spawn(python, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`parity helper failed (exit ${code}): ${stderr}`));
      else resolve(JSON.parse(stdout));
    });
  });
}

function f32(file: string): Float32Array {
  const b = fs.readFileSync(file);
  return new Float32Array(b.buffer, b.byteOffset, b.length / 4);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function poseDiffs(a: Pose, b: Pose) {
  const d = { xy: 0, z: 0, visibility: 0, world: 0, score: Math.abs(a.score - b.score) };
  for (let i = 0; i < 33; i++) {
    d.xy = Math.max(d.xy, Math.abs(a.keypoints[i][0] - b.keypoints[i][0]), Math.abs(a.keypoints[i][1] - b.keypoints[i][1]));
    d.z = Math.max(d.z, Math.abs(a.keypoints[i][2] - b.keypoints[i][2]));
    d.visibility = Math.max(d.visibility, Math.abs(a.keypoints[i][3] - b.keypoints[i][3]));
    for (let j = 0; j < 3; j++) d.world = Math.max(d.world, Math.abs(a.world[i][j] - b.world[i][j]));
  }
  return d;
}

function worst<T extends Record<string, number>>(rows: T[]): T {
  const out = { ...rows[0] };
  for (const r of rows) for (const k of Object.keys(r) as (keyof T)[]) out[k] = Math.max(out[k] as number, r[k] as number) as T[keyof T];
  return out;
}

const fmt = (o: Record<string, number>) =>
  Object.entries(o)
    .map(([k, v]) => `${k} ${v.toExponential(2)}`)
    .join(', ');

describeIfReady('BlazePose: Python backend vs TF.js-WASM', whyNot(), () => {
  let dir: string;
  let py: HelperOutput;
  let images: ReturnType<typeof readImages>;
  let sequenceNames: string[];
  const tfjsPoses: Record<string, Record<string, Pose | null>> = {};
  const tfjsSequence: Record<string, (Pose | null)[]> = {};
  const raw: Record<string, Record<string, Record<string, number>>> = {};

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'blazepose-parity-'));
    py = await runHelper(dir);
    images = readImages(dir);
    sequenceNames = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')).sequence;
    const tf = await loadTf();
    const detector = await loadGraph(tf, 'blazepose-detector');
    for (const model of LANDMARK_MODELS) {
      const landmarks = await loadGraph(tf, model);
      raw[model] = {};
      for (const im of images) {
        const base = path.join(dir, model, im.name);
        if (!fs.existsSync(`${base}.det.f32`)) continue;
        const row: Record<string, number> = {};
        const image = tf.tidy(() => tf.cast(tf.tensor3d(im.rgb, [im.height, im.width, 3], 'int32'), 'float32'));
        const detInput = imageToTensor(tf, image, 224, [-1, 1], null).tensor;
        row['detector input'] = maxAbsDiff(f32(`${base}.det.f32`), detInput.dataSync());
        const pose = py.models[model].poses[im.name];
        if (pose) {
          const lmInput = imageToTensor(tf, image, 256, [0, 1], { ...pose.roi }).tensor;
          row['landmark input'] = maxAbsDiff(f32(`${base}.lm.f32`), lmInput.dataSync());
          lmInput.dispose();
        }
        tf.dispose([image, detInput]);
        const ref = tf.tidy(() =>
          (detector.execute(tf.tensor4d(f32(`${base}.det.f32`), [1, 224, 224, 3])) as import('@tensorflow/tfjs').Tensor).dataSync(),
        );
        let magnitude = 1;
        for (const v of ref) magnitude = Math.max(magnitude, Math.abs(v));
        row['detector (relative)'] = maxAbsDiff(f32(`${base}.det-out.f32`), ref) / magnitude;
        if (fs.existsSync(`${base}.lm.f32`)) {
          const outs = tf.tidy(() =>
            (
              landmarks.execute(
                tf.tensor4d(f32(`${base}.lm.f32`), [1, 256, 256, 3]),
                LANDMARK_OUTPUTS,
              ) as import('@tensorflow/tfjs').Tensor[]
            ).map((t) => t.dataSync()),
          );
          const ours = f32(`${base}.lm-out.f32`);
          let offset = 0;
          outs.forEach((o, k) => {
            row[LANDMARK_OUTPUTS[k]] = maxAbsDiff(ours.subarray(offset, offset + o.length), o);
            offset += o.length;
          });
        }
        raw[model][im.name] = row;
      }
      landmarks.dispose();
      const bp = await BlazePoseTfjs.load(model);
      tfjsPoses[model] = {};
      for (const im of images) {
        if (!sequenceNames.includes(im.name)) tfjsPoses[model][im.name] = await bp.estimate(im.rgb, im.width, im.height);
      }
      // Tracking: each frame in the ROI the Python tracker used (its previous frame's auxiliary landmarks), so that
      // a difference in one frame is not carried into the next (a chain amplifies any rounding: a landmark near
      // the heatmap refinement's threshold moves the next ROI, and with it every keypoint after)
      const frames = sequenceNames.map((n) => images.find((im) => im.name === n)!);
      tfjsSequence[model] = [];
      for (const [k, f] of frames.entries()) {
        const roi = k === 0 ? null : py.models[model].sequence[k]?.roi;
        tfjsSequence[model].push(await bp.estimate(f.rgb, f.width, f.height, roi ? { ...roi } : null));
      }
      bp.dispose();
    }
    detector.dispose();
  }, 600_000);

  afterAll(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const model of LANDMARK_MODELS) {
    it(`${model}: raw network outputs on the same input tensors (${Object.entries(RAW_BOUNDS)
      .map(([k, v]) => `${k} <= ${v}`)
      .join(', ')})`, () => {
      const rows = Object.entries(raw[model]);
      expect(rows.length).toBeGreaterThanOrEqual(7);
      const w = worst(rows.filter(([, r]) => 'ld_3d' in r).map(([, r]) => r));
      console.log(`[blazepose-parity] ${model} raw outputs, max |diff| over ${rows.length} images: ${fmt(w)}`);
      for (const [name, r] of rows) {
        for (const [out, bound] of Object.entries(RAW_BOUNDS)) {
          if (out in r) expect(r[out], `${model} ${name} ${out}`).toBeLessThanOrEqual(bound);
        }
      }
    });

    it(`${model}: the whole pipeline gives the same poses (x, y <= ${FINAL_BOUNDS.xy} px, visibility <= ${FINAL_BOUNDS.visibility}, world <= ${FINAL_BOUNDS.world} m)`, () => {
      const names = Object.keys(py.models[model].poses);
      const rows = [];
      for (const name of names) {
        const a = py.models[model].poses[name];
        const b = tfjsPoses[model][name];
        expect(a === null, `${model} ${name}: a pose in one and not the other`).toBe(b === null);
        if (!a || !b) continue;
        const d = poseDiffs(a, b);
        rows.push(d);
        for (const [k, bound] of Object.entries(FINAL_BOUNDS))
          expect(d[k as keyof typeof d], `${model} ${name} ${k}`).toBeLessThanOrEqual(bound);
      }
      expect(rows.length).toBeGreaterThanOrEqual(6);
      console.log(`[blazepose-parity] ${model} final poses, max |diff| over ${rows.length} images: ${fmt(worst(rows))}`);
    });

    it(`${model}: tracking over 8 consecutive frames: each next ROI from the auxiliary landmarks, the same poses`, () => {
      const ours = py.models[model].sequence;
      const ref = tfjsSequence[model];
      expect(ours.length).toBe(8);
      const frame = images.find((im) => im.name === sequenceNames[0])!;
      for (let k = 1; k < ours.length; k++) {
        // the tracker's ROI is tfjs-models' poseLandmarksToRoi of the previous frame's auxiliary landmarks
        const expected = roiFromPoints((ours[k - 1] as Pose).auxiliary, frame.width, frame.height);
        const roi = (ours[k] as Pose).roi;
        for (const key of ['xCenter', 'yCenter', 'width', 'height', 'rotation'] as const) {
          expect(Math.abs(roi[key] - expected[key]), `${model} frame ${k} ROI ${key}`).toBeLessThan(1e-9);
        }
      }
      const rows = ours.map((a, k) => {
        const b = ref[k];
        expect(a && b, `${model} frame ${k}: a pose in both`).toBeTruthy();
        const d = poseDiffs(a as Pose, b as Pose);
        for (const [key, bound] of Object.entries(FINAL_BOUNDS))
          expect(d[key as keyof typeof d], `${model} frame ${k} ${key}`).toBeLessThanOrEqual(bound);
        return d;
      });
      console.log(`[blazepose-parity] ${model} tracked sequence, max |diff| over ${rows.length} frames: ${fmt(worst(rows))}`);
    });

    it(`${model}: the committed TF.js reference (used by pytest) matches TF.js run now`, () => {
      const committed = JSON.parse(fs.readFileSync(path.join(FIXTURE_DIR, 'tfjs-blazepose.json'), 'utf8'));
      for (const name of committed.images as string[]) {
        const a = committed.models[model][name] as Pose | null;
        const b = tfjsPoses[model][name];
        expect(a === null, `${model} ${name}`).toBe(b === null);
        if (a && b) {
          const d = poseDiffs(a, b);
          expect(d.xy, `${model} ${name}`).toBeLessThan(1e-3);
          expect(d.world, `${model} ${name}`).toBeLessThan(1e-5);
        }
      }
    });

    it(`${model}: the parity images hold real poses (upright and rotated people found)`, () => {
      const poses = py.models[model].poses;
      for (const name of ['messi5', 'basketball1', 'messi5-rot90', 'messi5-rot180', 'messi-pan#45', 'messi-rot90#15']) {
        expect(poses[name]?.score ?? 0, `${model} ${name}`).toBeGreaterThan(0.9);
      }
      // the person in messi5 lies on its side once turned by 90 degrees: so does the ROI
      expect(Math.abs(Math.abs(poses['messi5-rot90']!.roi.rotation - poses.messi5!.roi.rotation) - Math.PI / 2)).toBeLessThan(0.3);
    });
  }
});
