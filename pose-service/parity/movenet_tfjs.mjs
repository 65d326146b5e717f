// The reference: MoveNet run by TensorFlow.js (WASM backend) on the same graph-model files as the
// Python backend. Used by the parity test (pose-service/parity/movenet-parity.test.ts), by
// make_movenet_fixtures.py (to write tfjs-<model>.json) and by the speed comparison.
//
// CLI:
//   node pose-service/parity/movenet_tfjs.mjs reference MODEL            -> writes fixtures/movenet/tfjs-MODEL.json
//   node pose-service/parity/movenet_tfjs.mjs speed MODEL [REPEATS]      -> prints ms/frame over the fixture inputs
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(here, '..', '..');
export const FIXTURE_DIR = path.join(here, '..', 'tests', 'fixtures', 'movenet');
/** @type {Record<string, number>} model name -> input size */
export const MODELS = { 'movenet-thunder': 256, 'movenet-lightning': 192 };

/** @typedef {typeof import('@tensorflow/tfjs')} Tf */
/** @typedef {import('@tensorflow/tfjs').GraphModel} GraphModel */
/**
 * One committed input, as make_movenet_fixtures.py writes it in index-MODEL.json.
 * @typedef {{ name: string, source: string, frame: number | null, kind: 'letterbox' | 'crop', box: number[], width: number, height: number }} FixtureEntry
 */
/** @typedef {number[][]} Keypoints 17 x [y, x, score] */

export function modelDir() {
  return process.env.POSE_MOVENET_DIR || path.join(REPO_ROOT, 'node_modules', '@vladmandic', 'human-models', 'models');
}

/** @type {Promise<Tf> | null} */
let tfPromise = null;
/**
 * @tensorflow/tfjs with the WASM backend, initialised once.
 * @returns {Promise<Tf>}
 */
export function loadTf() {
  tfPromise ??= (async () => {
    const tf = await import('@tensorflow/tfjs');
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    const require = createRequire(import.meta.url);
    const wasmDir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
    wasm.setWasmPaths(wasmDir + path.sep);
    await tf.setBackend('wasm');
    await tf.ready();
    return tf;
  })();
  return tfPromise;
}

/**
 * tf.loadGraphModel from model.json + its shards, through a custom IOHandler (no fetch, no file:// URLs).
 * @param {Tf} tf
 * @param {string} model
 * @returns {Promise<GraphModel>}
 */
export async function loadModel(tf, model) {
  const jsonPath = path.join(modelDir(), `${model}.json`);
  /** @type {import('@tensorflow/tfjs').io.ModelJSON} */
  const json = JSON.parse(fs.readFileSync(jsonPath, 'utf8'));
  const shards = json.weightsManifest.flatMap((g) => g.paths).map((p) => fs.readFileSync(path.join(path.dirname(jsonPath), p)));
  const all = Buffer.concat(shards);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  const weightSpecs = json.weightsManifest.flatMap((g) => g.weights);
  return tf.loadGraphModel({ load: async () => ({ modelTopology: json.modelTopology, weightSpecs, weightData }) });
}

/**
 * The committed inputs of one model: { index: [...entries], size, data: Uint8Array (N*S*S*3) }.
 * @param {string} model
 * @returns {{ index: FixtureEntry[], size: number, data: Uint8Array }}
 */
export function readFixtureInputs(model) {
  /** @type {{ model: string, inputSize: number, entries: FixtureEntry[] }} */
  const index = JSON.parse(fs.readFileSync(path.join(FIXTURE_DIR, `index-${model}.json`), 'utf8'));
  const data = zlib.gunzipSync(fs.readFileSync(path.join(FIXTURE_DIR, `inputs-${model}.u8.gz`)));
  const size = index.inputSize;
  if (data.length !== index.entries.length * size * size * 3) {
    throw new Error(`inputs-${model}.u8.gz holds ${data.length} bytes, index lists ${index.entries.length} inputs of ${size}x${size}x3`);
  }
  return { index: index.entries, size, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

/**
 * Run one input (Uint8Array S*S*3, RGB) through the graph; returns [[y, x, score] * 17].
 * @param {Tf} tf
 * @param {GraphModel} graphModel
 * @param {Uint8Array} pixels
 * @param {number} size
 * @returns {Keypoints}
 */
export function runOne(tf, graphModel, pixels, size) {
  return tf.tidy(() => {
    const input = tf.tensor4d(Int32Array.from(pixels), [1, size, size, 3], 'int32');
    // MoveNet has one output, so execute() returns one tensor (1 x 1 x 17 x 3), not an array.
    const out = /** @type {import('@tensorflow/tfjs').Tensor} */ (graphModel.execute(input));
    const flat = Array.from(out.dataSync());
    /** @type {Keypoints} */
    const rows = [];
    for (let k = 0; k < 17; k++) rows.push(flat.slice(k * 3, k * 3 + 3));
    return rows;
  });
}

/**
 * @param {string} model
 * @returns {Promise<{ index: FixtureEntry[], outputs: Keypoints[] }>}
 */
export async function runFixture(model) {
  const tf = await loadTf();
  const graphModel = await loadModel(tf, model);
  const { index, size, data } = readFixtureInputs(model);
  const frame = size * size * 3;
  const outputs = index.map((_, i) => runOne(tf, graphModel, data.subarray(i * frame, (i + 1) * frame), size));
  graphModel.dispose();
  return { index, outputs };
}

/** @param {string[]} argv */
async function main(argv) {
  const [cmd, model, repeatsArg] = argv;
  if (!MODELS[model] || !['reference', 'speed'].includes(cmd)) {
    console.error('usage: movenet_tfjs.mjs reference|speed movenet-thunder|movenet-lightning [repeats]');
    process.exit(2);
  }
  const tf = await loadTf();
  if (cmd === 'reference') {
    const { outputs } = await runFixture(model);
    const require = createRequire(import.meta.url);
    const version = require('@tensorflow/tfjs/package.json').version;
    const file = path.join(FIXTURE_DIR, `tfjs-${model}.json`);
    fs.writeFileSync(file, `${JSON.stringify({ model, tfjs: version, backend: tf.getBackend(), outputs })}\n`);
    console.log(`wrote ${path.relative(REPO_ROOT, file)} (${outputs.length} inputs)`);
    return;
  }
  const repeats = Number(repeatsArg ?? 3);
  const graphModel = await loadModel(tf, model);
  const { index, size, data } = readFixtureInputs(model);
  const frame = size * size * 3;
  const n = index.length;
  for (let i = 0; i < Math.min(n, 3); i++) runOne(tf, graphModel, data.subarray(i * frame, (i + 1) * frame), size); // warm-up
  const times = [];
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) runOne(tf, graphModel, data.subarray(i * frame, (i + 1) * frame), size);
    times.push((performance.now() - t0) / n);
  }
  times.sort((a, b) => a - b);
  const simd = tf.env().getBool('WASM_HAS_SIMD_SUPPORT');
  const threads = tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT');
  console.log(
    JSON.stringify({
      model,
      backend: 'tfjs-wasm',
      simd,
      multithread: threads,
      frames: n,
      repeats,
      msPerFrameMin: +times[0].toFixed(1),
      msPerFrameMedian: +times[Math.floor(times.length / 2)].toFixed(1),
    }),
  );
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
