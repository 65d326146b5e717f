/**
 * The old design, rebuilt as the baseline: frames extracted with ffmpeg, then one Python process
 * per frame (pose-service/bench/per_frame.py: imports, model load, one frame from stdin, one JSON
 * result on stdout, exit), at most 2 processes at once, as the seed's pool ran them. Wall time
 * from the start of the extraction to the last result, for the same frames as the warm pool.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { extractFrames } from '../../server/media/frame-source.js';
import { type Clip, clipFrameSource } from './clips.js';
import type { BenchContext } from './context.js';
import { median } from './stats.js';

export interface BaselineResult {
  model: string;
  frames: number;
  concurrency: number;
  wallMs: number;
  extractMs: number;
  /** Medians over the processes. */
  processMs: number;
  importMs: number;
  loadMs: number;
  poseMs: number;
  failed: number;
}

interface PerFrameOutput {
  persons: unknown[];
  timing: { importMs: number; loadMs: number; poseMs: number; processMs: number };
}

export async function runBaseline(ctx: BenchContext, model: string, clip: Clip, frames: number, concurrency = 2): Promise<BaselineResult> {
  const t0 = performance.now();
  const jpegs: Buffer[] = [];
  for await (const f of extractFrames(clipFrameSource(ctx, clip, frames, 'jpeg'))) {
    jpegs.push(f.data);
  }
  const extractMs = performance.now() - t0;

  const outputs: (PerFrameOutput | null)[] = new Array(jpegs.length).fill(null);
  let next = 0;
  const lane = async () => {
    while (next < jpegs.length) {
      const i = next++;
      outputs[i] = await poseOneFrame(ctx, model, jpegs[i]).catch((err: Error) => {
        ctx.log(`baseline frame ${i} failed: ${err.message.split('\n')[0]}`);
        return null;
      });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  const wallMs = performance.now() - t0;
  const ok = outputs.filter((o): o is PerFrameOutput => o !== null);
  return {
    model,
    frames: jpegs.length,
    concurrency,
    wallMs,
    extractMs,
    processMs: median(ok.map((o) => o.timing.processMs)),
    importMs: median(ok.map((o) => o.timing.importMs)),
    loadMs: median(ok.map((o) => o.timing.loadMs)),
    poseMs: median(ok.map((o) => o.timing.poseMs)),
    failed: jpegs.length - ok.length,
  };
}

function poseOneFrame(ctx: BenchContext, model: string, jpeg: Buffer): Promise<PerFrameOutput> {
  return new Promise((resolve, reject) => {
    const child = spawn(ctx.python, [path.join(ctx.repo, 'pose-service', 'bench', 'per_frame.py'), '--model', model], {
      cwd: path.join(ctx.repo, 'pose-service'),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString('utf8')).slice(-2000)));
    child.once('error', reject);
    child.once('close', (code) => {
      if (code !== 0) return reject(new Error(`per_frame.py exited with ${code}: ${err}`));
      try {
        resolve(JSON.parse(Buffer.concat(out).toString('utf8')));
      } catch (e) {
        reject(e as Error);
      }
    });
    child.stdin.on('error', () => {}); // a process that died early is reported by its exit code
    child.stdin.end(jpeg);
  });
}
