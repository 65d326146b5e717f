// The reference for the BlazePose backend: the same graph-model files run by TensorFlow.js (WASM backend), and
// tfjs-models' BlazePose pipeline (pose-detection/src/blazepose_tfjs with shared/calculators) written out
// again here with the same tf ops (tf.image.transform crops, tf.image.nonMaxSuppression, ...), since
// @tensorflow-models/pose-detection is not installed. Used by blazepose-parity.test.ts and to write the
// committed reference tests/fixtures/blazepose/tfjs-blazepose.json.
//
// CLI:
//   node pose-service/parity/blazepose_tfjs.mjs reference DIR       -> tests/fixtures/blazepose/tfjs-blazepose.json: the
//                                                                      poses of the still images a helper run wrote
//                                                                      into DIR (blazepose_parity_helper.py --out DIR)
//   node pose-service/parity/blazepose_tfjs.mjs speed DIR [REPEATS] -> ms per frame of each model over those stills
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadTf, modelDir, REPO_ROOT } from './movenet_tfjs.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
export const FIXTURE_DIR = path.join(here, '..', 'tests', 'fixtures', 'blazepose');
export const LANDMARK_MODELS = ['blazepose-lite', 'blazepose-full', 'blazepose-heavy'];
export const LANDMARK_OUTPUTS = ['ld_3d', 'output_poseflag', 'activation_heatmap', 'world_3d'];
export { REPO_ROOT };

/** @typedef {typeof import('@tensorflow/tfjs')} Tf */
/** @typedef {import('@tensorflow/tfjs').GraphModel} GraphModel */
/** @typedef {import('@tensorflow/tfjs').Tensor} Tensor */
/** @typedef {{ xCenter: number, yCenter: number, width: number, height: number, rotation: number }} Rect */
/** @typedef {{ top: number, left: number, bottom: number, right: number }} Padding */
/** @typedef {{ x: number, y: number, z: number, score: number }} Landmark */
/**
 * One pose, as the Python backend reports it (unrounded): keypoints [x, y, z, visibility] in pixels, world [x, y, z]
 * in metres, the ROI it was found in and the auxiliary landmarks (normalized x, y) for the next one.
 * @typedef {{ score: number, keypoints: number[][], world: number[][], roi: Rect, auxiliary: number[][] }} Pose
 */

// blazepose_tfjs/constants.ts
const ANCHORS = { numLayers: 5, minScale: 0.1484375, maxScale: 0.75, inputSize: 224, offset: 0.5, strides: [8, 16, 32, 32, 32] };
const DETECTOR_SIZE = 224;
const LANDMARK_SIZE = 256;
const MIN_DETECTION_SCORE = 0.5;
const NMS_IOU = 0.3;
const ROI_SCALE = 1.25;
const MIN_POSE_SCORE = 0.5;
const REFINE_KERNEL = 7;
const REFINE_MIN_CONFIDENCE = 0.5;

/**
 * tf.loadGraphModel from model.json + its shards (custom IOHandler), with the signature, so that outputs can be
 * asked for by name (ld_3d, ...).
 * @param {Tf} tf
 * @param {string} name e.g. blazepose-heavy
 * @returns {Promise<GraphModel>}
 */
export async function loadGraph(tf, name) {
  const jsonPath = path.join(modelDir(), `${name}.json`);
  /** @type {import('@tensorflow/tfjs').io.ModelJSON} */
  const json = JSON.parse(fs.readFileSync(jsonPath, 'utf8'));
  const shards = json.weightsManifest.flatMap((g) => g.paths).map((p) => fs.readFileSync(path.join(path.dirname(jsonPath), p)));
  const all = Buffer.concat(shards);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  const weightSpecs = json.weightsManifest.flatMap((g) => g.weights);
  return tf.loadGraphModel({
    load: async () => ({ modelTopology: json.modelTopology, weightSpecs, weightData, signature: json.signature }),
  });
}

/** createSsdAnchors with BlazePose's configuration (fixed anchor size: centres only). @returns {number[][]} [x, y] */
export function ssdAnchors() {
  const { numLayers, inputSize, offset, strides } = ANCHORS;
  const anchors = [];
  let layer = 0;
  while (layer < numLayers) {
    let perCell = 0;
    let last = layer;
    while (last < strides.length && strides[last] === strides[layer]) {
      perCell += 2; // aspect ratio 1.0 and the interpolated scale
      last++;
    }
    const side = Math.ceil(inputSize / strides[layer]);
    for (let y = 0; y < side; y++) {
      for (let x = 0; x < side; x++) {
        for (let a = 0; a < perCell; a++) anchors.push([(x + offset) / side, (y + offset) / side]);
      }
    }
    layer = last;
  }
  return anchors;
}

/** @param {number} angle */
function normalizeRadians(angle) {
  return angle - 2 * Math.PI * Math.floor((angle + Math.PI) / (2 * Math.PI));
}

/**
 * calculateAlignmentPointsRects (start 0, end 1, target 90 degrees) then transformNormalizedRect (squareLong, 1.25).
 * @param {number[][]} points normalized [x, y]
 * @param {number} width
 * @param {number} height
 * @returns {Rect}
 */
export function roiFromPoints(points, width, height) {
  const x0 = points[0][0] * width;
  const y0 = points[0][1] * height;
  const x1 = points[1][0] * width;
  const y1 = points[1][1] * height;
  const box = Math.sqrt((x1 - x0) * (x1 - x0) + (y1 - y0) * (y1 - y0)) * 2;
  const rotation = normalizeRadians(Math.PI / 2 - Math.atan2(-(y1 - y0), x1 - x0));
  const longSide = Math.max(box, box); // width and height in pixels are both `box`
  return {
    xCenter: x0 / width,
    yCenter: y0 / height,
    width: (longSide / width) * ROI_SCALE,
    height: (longSide / height) * ROI_SCALE,
    rotation,
  };
}

/**
 * convertImageToTensor: the (rotated) ROI of the image, letterboxed to size x size by tf.image.transform, values
 * shifted from 0..255 to range.
 * @param {Tf} tf
 * @param {Tensor} image float32 [H, W, 3]
 * @param {number} size
 * @param {[number, number]} range
 * @param {Rect | null} rect
 * @returns {{ tensor: Tensor, padding: Padding }}
 */
export function imageToTensor(tf, image, size, range, rect) {
  const [height, width] = image.shape;
  const roi = rect
    ? {
        xCenter: rect.xCenter * width,
        yCenter: rect.yCenter * height,
        width: rect.width * width,
        height: rect.height * height,
        rotation: rect.rotation,
      }
    : { xCenter: 0.5 * width, yCenter: 0.5 * height, width, height, rotation: 0 };
  // padRoi (keepAspectRatio)
  const roiAspect = roi.height / roi.width;
  const padding = { top: 0, left: 0, bottom: 0, right: 0 };
  if (1 > roiAspect) {
    roi.height = roi.width;
    padding.top = padding.bottom = (1 - roiAspect) / 2;
  } else {
    roi.width = roi.height;
    padding.left = padding.right = (1 - 1 / roiAspect) / 2;
  }
  // getRotatedSubRectToRectTransformMatrix, then getProjectiveTransformMatrix
  const a = roi.width;
  const b = roi.height;
  const c = Math.cos(roi.rotation);
  const d = Math.sin(roi.rotation);
  const m00 = (a * c) / width;
  const m01 = (-b * d) / width;
  const m03 = (-0.5 * a * c + 0.5 * b * d + roi.xCenter) / width;
  const m10 = (a * d) / height;
  const m11 = (b * c) / height;
  const m13 = (-0.5 * b * c - 0.5 * a * d + roi.yCenter) / height;
  const transform = [
    (m00 * width) / size,
    (m01 * width) / size,
    m03 * width,
    (m10 * height) / size,
    (m11 * height) / size,
    m13 * height,
    0,
    0,
  ];
  const scale = (range[1] - range[0]) / 255;
  const tensor = tf.tidy(() => {
    const warped = tf.image.transform(
      /** @type {import('@tensorflow/tfjs').Tensor4D} */ (tf.expandDims(image)),
      tf.tensor2d(transform, [1, 8]),
      'bilinear',
      'constant',
      0,
      [size, size],
    );
    return tf.add(tf.mul(warped, scale), range[0]);
  });
  return { tensor, padding };
}

/**
 * The detector on the whole image: tensorsToDetections, NMS (one pose), letterbox removal. Null: nobody.
 * @param {Tf} tf
 * @param {GraphModel} detector
 * @param {Tensor} input [1, 224, 224, 3]
 * @param {Padding} padding
 * @param {{ x: Tensor, y: Tensor }} anchors
 * @returns {Promise<{ score: number, keypoints: number[][] } | null>}
 */
export async function detectPerson(tf, detector, input, padding, anchors) {
  const raw = /** @type {Tensor} */ (detector.execute(input));
  const { scores, boxes } = tf.tidy(() => {
    const logits = tf.squeeze(tf.slice(raw, [0, 0, 0], [1, -1, 1]));
    const r = tf.squeeze(tf.slice(raw, [0, 0, 1], [1, -1, -1]));
    const col = (/** @type {number} */ i) => tf.squeeze(tf.slice(r, [0, i], [-1, 1]));
    const xc = tf.add(tf.div(col(0), DETECTOR_SIZE), anchors.x);
    const yc = tf.add(tf.div(col(1), DETECTOR_SIZE), anchors.y);
    const w = tf.div(col(2), DETECTOR_SIZE);
    const h = tf.div(col(3), DETECTOR_SIZE);
    const parts = [tf.sub(yc, tf.div(h, 2)), tf.sub(xc, tf.div(w, 2)), tf.add(yc, tf.div(h, 2)), tf.add(xc, tf.div(w, 2))];
    for (let k = 0; k < 4; k++) {
      parts.push(tf.add(tf.div(col(4 + 2 * k), DETECTOR_SIZE), anchors.x), tf.add(tf.div(col(5 + 2 * k), DETECTOR_SIZE), anchors.y));
    }
    return { scores: tf.sigmoid(tf.clipByValue(logits, -100, 100)), boxes: tf.stack(parts, 1) };
  });
  const s = await scores.data();
  const bx = await boxes.data();
  tf.dispose([raw, scores, boxes]);
  /** @type {{ score: number, box: number[], keypoints: number[][] }[]} */
  const found = [];
  for (let i = 0; i < s.length; i++) {
    const o = i * 12;
    if (s[i] < MIN_DETECTION_SCORE || bx[o + 3] - bx[o + 1] < 0 || bx[o + 2] - bx[o] < 0) continue;
    const keypoints = [];
    for (let k = 0; k < 4; k++) keypoints.push([bx[o + 4 + 2 * k], bx[o + 5 + 2 * k]]);
    found.push({ score: s[i], box: [bx[o], bx[o + 1], bx[o + 2], bx[o + 3]], keypoints });
  }
  if (!found.length) return null;
  found.sort((p, q) => q.score - p.score);
  const picked = tf.tidy(() =>
    tf.image.nonMaxSuppression(tf.tensor2d(found.map((f) => f.box)), tf.tensor1d(found.map((f) => f.score)), 1, NMS_IOU),
  );
  const best = found[(await picked.data())[0]];
  picked.dispose();
  const lr = padding.left + padding.right;
  const tb = padding.top + padding.bottom;
  return { score: best.score, keypoints: best.keypoints.map(([x, y]) => [(x - padding.left) / (1 - lr), (y - padding.top) / (1 - tb)]) };
}

const sigmoid = (/** @type {number} */ v) => 1 / (1 + Math.exp(-v));

/**
 * The landmark model's outputs for one crop -> a Pose in pixels (tensorsToLandmarks, refineLandmarksFromHeatmap,
 * removeLandmarkLetterbox, calculateLandmarkProjection, calculateWorldLandmarkProjection). Null: pose score < 0.5.
 * @param {{ ld: Float32Array, flag: number, heatmap: Float32Array, world: Float32Array }} out heatmap NHWC 64x64x39
 * @param {Rect} roi
 * @param {Padding} padding
 * @param {number} width
 * @param {number} height
 * @returns {Pose | null}
 */
export function decodePose(out, roi, padding, width, height) {
  if (!(out.flag >= MIN_POSE_SCORE)) return null;
  /** @type {Landmark[]} */
  const lms = [];
  for (let i = 0; i < 39; i++) {
    const o = i * 5;
    lms.push({
      x: out.ld[o] / LANDMARK_SIZE,
      y: out.ld[o + 1] / LANDMARK_SIZE,
      z: out.ld[o + 2] / LANDMARK_SIZE,
      score: sigmoid(out.ld[o + 3]),
    });
  }
  const hm = 64;
  const half = Math.trunc((REFINE_KERNEL - 1) / 2);
  for (let i = 0; i < lms.length; i++) {
    const col = Math.trunc(lms[i].x * hm);
    const row = Math.trunc(lms[i].y * hm);
    if (col < 0 || col >= hm || row < 0 || col >= hm) continue; // sic, as tfjs-models
    let sum = 0;
    let wc = 0;
    let wr = 0;
    let peak = 0;
    for (let r = Math.max(0, row - half); r < Math.min(hm, row + half + 1); r++) {
      for (let c = Math.max(0, col - half); c < Math.min(hm, col + half + 1); c++) {
        const v = out.heatmap[(r * hm + c) * 39 + i];
        sum += v;
        peak = Math.max(peak, v);
        wc += c * v;
        wr += r * v;
      }
    }
    if (peak >= REFINE_MIN_CONFIDENCE && sum > 0) {
      lms[i].x = wc / hm / sum;
      lms[i].y = wr / hm / sum;
    }
  }
  const lr = padding.left + padding.right;
  const tb = padding.top + padding.bottom;
  const cos = Math.cos(roi.rotation);
  const sin = Math.sin(roi.rotation);
  const projected = lms.map((l) => {
    const x = (l.x - padding.left) / (1 - lr) - 0.5;
    const y = (l.y - padding.top) / (1 - tb) - 0.5;
    const z = l.z / (1 - lr);
    return {
      x: (cos * x - sin * y) * roi.width + roi.xCenter,
      y: (sin * x + cos * y) * roi.height + roi.yCenter,
      z: z * roi.width,
      score: l.score,
    };
  });
  const keypoints = projected.slice(0, 33).map((l) => [l.x * width, l.y * height, l.z * width, l.score]);
  const world = [];
  for (let i = 0; i < 33; i++) {
    const [x, y, z] = [out.world[i * 3], out.world[i * 3 + 1], out.world[i * 3 + 2]];
    world.push([cos * x - sin * y, sin * x + cos * y, z]);
  }
  const auxiliary = projected.slice(33, 35).map((l) => [l.x, l.y]);
  return { score: out.flag, keypoints, world, roi, auxiliary };
}

/**
 * Runs a landmark model on inputs [B, 256, 256, 3]; returns the four outputs per input.
 * @param {Tf} tf
 * @param {GraphModel} model
 * @param {Tensor} input
 */
export async function runLandmarks(tf, model, input) {
  const outs = /** @type {Tensor[]} */ (model.execute(input, LANDMARK_OUTPUTS));
  const [ld, flag, heatmap, world] = await Promise.all(outs.map((t) => t.data()));
  tf.dispose(outs);
  return {
    ld: /** @type {Float32Array} */ (ld),
    flag: /** @type {Float32Array} */ (flag)[0],
    heatmap: /** @type {Float32Array} */ (heatmap),
    world: /** @type {Float32Array} */ (world),
  };
}

/** A loaded pipeline: the detector, one landmark model and the anchors. */
export class BlazePoseTfjs {
  /**
   * @param {Tf} tf
   * @param {GraphModel} detector
   * @param {GraphModel} landmarks
   */
  constructor(tf, detector, landmarks) {
    this.tf = tf;
    this.detector = detector;
    this.landmarks = landmarks;
    const a = ssdAnchors();
    this.anchors = { x: tf.tensor1d(a.map((p) => p[0])), y: tf.tensor1d(a.map((p) => p[1])) };
  }

  /** @param {string} model e.g. blazepose-full */
  static async load(model) {
    const tf = await loadTf();
    return new BlazePoseTfjs(tf, await loadGraph(tf, 'blazepose-detector'), await loadGraph(tf, model));
  }

  /**
   * tfjs-models' estimatePoses for one RGB image: the detector where there is no ROI, else the given ROI (tracking).
   * @param {Uint8Array} rgb
   * @param {number} width
   * @param {number} height
   * @param {Rect | null} [roi]
   * @returns {Promise<Pose | null>}
   */
  async estimate(rgb, width, height, roi = null) {
    const tf = this.tf;
    const image = tf.tidy(() => tf.cast(tf.tensor3d(rgb, [height, width, 3], 'int32'), 'float32'));
    try {
      let rect = roi;
      if (!rect) {
        const det = imageToTensor(tf, image, DETECTOR_SIZE, [-1, 1], null);
        const person = await detectPerson(tf, this.detector, det.tensor, det.padding, this.anchors);
        det.tensor.dispose();
        if (!person) return null;
        rect = roiFromPoints(person.keypoints, width, height);
      }
      const crop = imageToTensor(tf, image, LANDMARK_SIZE, [0, 1], rect);
      const out = await runLandmarks(tf, this.landmarks, crop.tensor);
      crop.tensor.dispose();
      return decodePose(out, rect, crop.padding, width, height);
    } finally {
      image.dispose();
    }
  }

  dispose() {
    this.detector.dispose();
    this.landmarks.dispose();
    this.tf.dispose([this.anchors.x, this.anchors.y]);
  }
}

/**
 * The images a helper run wrote (index.json + NAME.rgb), for the CLI.
 * @param {string} dir
 * @returns {{ name: string, width: number, height: number, rgb: Uint8Array }[]}
 */
export function readImages(dir) {
  /** @type {{ images: { name: string, width: number, height: number }[] }} */
  const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8'));
  return index.images.map((im) => ({ ...im, rgb: new Uint8Array(fs.readFileSync(path.join(dir, `${im.name}.rgb`))) }));
}

/** @param {string[]} argv */
async function main(argv) {
  const [cmd, dir, repeatsArg] = argv;
  if (!['reference', 'speed'].includes(cmd) || !dir) {
    console.error('usage: blazepose_tfjs.mjs reference|speed DIR [repeats]   (DIR: written by blazepose_parity_helper.py --out DIR)');
    process.exit(2);
  }
  // the stills (no video frames): pytest decodes them itself, without ffmpeg
  const images = readImages(dir).filter((im) => !im.name.includes('#'));
  if (cmd === 'reference') {
    /** @type {Record<string, Record<string, Pose | null>>} */
    const models = {};
    for (const model of LANDMARK_MODELS) {
      const bp = await BlazePoseTfjs.load(model);
      models[model] = {};
      for (const im of images) models[model][im.name] = await bp.estimate(im.rgb, im.width, im.height);
      bp.dispose();
    }
    const require = createRequire(import.meta.url);
    const version = require('@tensorflow/tfjs/package.json').version;
    fs.mkdirSync(FIXTURE_DIR, { recursive: true });
    const file = path.join(FIXTURE_DIR, 'tfjs-blazepose.json');
    // 7 significant digits: far below the bounds it is checked with, a third of the size
    const text = JSON.stringify({ tfjs: version, backend: 'wasm', images: images.map((im) => im.name), models }, (_, v) =>
      typeof v === 'number' ? Number(v.toPrecision(7)) : v,
    );
    fs.writeFileSync(file, `${text}\n`);
    console.log(`wrote ${path.relative(REPO_ROOT, file)} (${images.length} images x ${LANDMARK_MODELS.length} models)`);
    return;
  }
  const repeats = Number(repeatsArg ?? 3);
  const tf = await loadTf();
  /** @param {() => Promise<unknown> | unknown} fn @param {number} per */
  const median = async (fn, per) => {
    await fn(); // warm-up
    await fn();
    const times = [];
    for (let r = 0; r < repeats; r++) {
      const t0 = performance.now();
      await fn();
      times.push((performance.now() - t0) / per);
    }
    times.sort((p, q) => p - q);
    return { best: +times[0].toFixed(1), median: +times[Math.floor(times.length / 2)].toFixed(1) };
  };
  for (const model of LANDMARK_MODELS) {
    const bp = await BlazePoseTfjs.load(model);
    const det = tf.zeros([1, DETECTOR_SIZE, DETECTOR_SIZE, 3]);
    const crop = tf.zeros([1, LANDMARK_SIZE, LANDMARK_SIZE, 3]);
    const detector = await median(() => /** @type {Tensor} */ (bp.detector.execute(det)).data(), 1);
    const landmarks = await median(async () => {
      const outs = /** @type {Tensor[]} */ (bp.landmarks.execute(crop, LANDMARK_OUTPUTS));
      await Promise.all(outs.map((t) => t.data()));
      tf.dispose(outs);
    }, 1);
    const pipeline = await median(async () => {
      for (const im of images) await bp.estimate(im.rgb, im.width, im.height);
    }, images.length);
    tf.dispose([det, crop]);
    const flags = { simd: tf.env().getBool('WASM_HAS_SIMD_SUPPORT'), multithread: tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT') };
    console.log(
      JSON.stringify({ model, backend: 'tfjs-wasm', ...flags, repeats, msPerCall: { detector, landmarks }, msPerFrame: pipeline }),
    );
    bp.dispose();
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
