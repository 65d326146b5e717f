/**
 * Peer: the same MoveNet files run in Node with TF.js and its WASM backend (what a JS developer
 * would use instead of a Python pool), on the same frames (the server's JPEGs, decoded to RGB).
 * Per frame, as tfjs-models' MoveNet does on its first frame: the whole frame padded to a square
 * (the letterbox box the Python backend uses), cropAndResize to the model's input, cast to int32,
 * one inference, keypoints read back. That is one inference per frame, so it is compared with the
 * Python ceiling's `single` mode (tracking off: one inference per frame too).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { type FrameSet, rawFrames } from './clips.js';
import type { BenchContext } from './context.js';
import { type Spread, spread } from './stats.js';

export interface PeerResult {
  model: string;
  backend: string;
  threads: number;
  simd: boolean;
  loadMs: number;
  fps: Spread;
  msPerFrame: Spread;
}

const INPUT_SIZES: Record<string, number> = { 'movenet-thunder': 256, 'movenet-lightning': 192 };

/** Whether the peer can run `model` (MoveNet only). */
export function hasPeer(model: string): boolean {
  return model in INPUT_SIZES;
}

/*
 * The parts of @tensorflow/tfjs and its WASM backend the peer uses. They are imported by a name the
 * compiler does not resolve, so the build needs neither package: these declarations stand in for theirs.
 */
interface TfTensor {
  data(): Promise<ArrayLike<number>>;
  dispose(): void;
}

interface TfGraphModel {
  execute(input: TfTensor): TfTensor;
  dispose(): void;
}

interface Tfjs {
  setBackend(name: string): Promise<boolean>;
  ready(): Promise<void>;
  getBackend(): string;
  env(): { getBool(flag: string): boolean };
  tidy(fn: () => TfTensor): TfTensor;
  tensor4d(values: Uint8Array, shape: [number, number, number, number], dtype: 'float32'): TfTensor;
  cast(x: TfTensor, dtype: 'int32'): TfTensor;
  image: {
    cropAndResize(
      image: TfTensor,
      boxes: [number, number, number, number][],
      boxInd: number[],
      cropSize: [number, number],
      method: 'bilinear',
      extrapolationValue: number,
    ): TfTensor;
  };
  loadGraphModel(handler: {
    load(): Promise<{ modelTopology: unknown; weightSpecs: unknown[]; weightData: ArrayBuffer | SharedArrayBuffer }>;
  }): Promise<TfGraphModel>;
}

interface TfjsWasm {
  setWasmPaths(prefix: string): void;
  getThreadsCount?(): number;
}

/** TF.js-WASM when installed (devDependencies); null with the reason otherwise. */
export async function loadTfjsWasm(ctx: BenchContext): Promise<{ tf: Tfjs; wasm: TfjsWasm } | { missing: string }> {
  try {
    const tf: Tfjs = await import('@tensorflow/tfjs' as string);
    const wasm: TfjsWasm = await import('@tensorflow/tfjs-backend-wasm' as string);
    const require = createRequire(path.join(ctx.repo, 'package.json'));
    const dist = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
    wasm.setWasmPaths(dist + path.sep);
    if (!(await tf.setBackend('wasm'))) return { missing: 'the TF.js wasm backend did not initialise' };
    await tf.ready();
    return { tf, wasm };
  } catch (err) {
    return {
      missing: `@tensorflow/tfjs and @tensorflow/tfjs-backend-wasm are needed (devDependencies: npm install): ${(err as Error).message}`,
    };
  }
}

export async function runPeer(ctx: BenchContext, lib: { tf: Tfjs; wasm: TfjsWasm }, model: string, frames: FrameSet): Promise<PeerResult> {
  const { tf, wasm } = lib;
  const size = INPUT_SIZES[model];
  if (!size) throw new Error(`peer: no TF.js MoveNet for ${model}`);
  const dir = path.join(ctx.repo, 'node_modules', '@vladmandic', 'human-models', 'models');
  const t0 = performance.now();
  const json = JSON.parse(readFileSync(path.join(dir, `${model}.json`), 'utf8'));
  const weightSpecs = json.weightsManifest.flatMap((g: { weights: unknown[] }) => g.weights);
  const bins = json.weightsManifest.flatMap((g: { paths: string[] }) => g.paths.map((p) => readFileSync(path.join(dir, p))));
  const all = Buffer.concat(bins);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  const graph = await tf.loadGraphModel({ load: async () => ({ modelTopology: json.modelTopology, weightSpecs, weightData }) });
  const loadMs = performance.now() - t0;

  const raw = readFileSync(rawFrames(ctx, frames));
  const { width: w, height: h } = frames;
  const bytes = w * h * 3;
  const images = Array.from({ length: frames.count }, (_, i) => new Uint8Array(raw.buffer, raw.byteOffset + i * bytes, bytes));
  const box = letterboxBox(h, w);

  const poseOne = async (rgb: Uint8Array) => {
    const out = tf.tidy(() => {
      const image = tf.tensor4d(rgb, [1, h, w, 3], 'float32');
      const input = tf.cast(tf.image.cropAndResize(image, [box], [0], [size, size], 'bilinear', 0), 'int32');
      return graph.execute(input);
    });
    const keypoints = await out.data();
    out.dispose();
    return keypoints;
  };

  for (const img of images.slice(0, 3)) await poseOne(img); // warm-up: kernels compiled, memory sized
  const fps: number[] = [];
  for (let rep = 0; rep < ctx.reps; rep++) {
    const start = performance.now();
    for (const img of images) await poseOne(img);
    fps.push(images.length / ((performance.now() - start) / 1000));
  }
  graph.dispose();
  const s = spread(fps);
  return {
    model,
    backend: tf.getBackend(),
    threads: typeof wasm.getThreadsCount === 'function' ? wasm.getThreadsCount() : 1,
    simd: Boolean(tf.env().getBool('WASM_HAS_SIMD_SUPPORT')),
    loadMs,
    fps: s,
    msPerFrame: spread(fps.map((f) => 1000 / f)),
  };
}

/** pose-service/posepool_worker/backends/movenet/crop.py letterbox_box: the frame padded to a square. */
function letterboxBox(height: number, width: number): [number, number, number, number] {
  if (width > height) {
    const yMin = (height / 2 - width / 2) / height;
    return [yMin, 0, yMin + width / height, 1];
  }
  const xMin = (width / 2 - height / 2) / width;
  return [0, xMin, 1, xMin + height / width];
}
