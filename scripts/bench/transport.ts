/**
 * Transport: what it costs, per frame, to get a frame from ffmpeg to a worker as an RGB array and its
 * result back, for each way the protocol offers (POSE_TRANSPORT):
 *   1. ffmpeg's output: CPU per frame to write JPEG (jpeg, file) or raw RGB (rgb24, rgb24-file) frames
 *      (ffmpeg -benchmark: user+system time), same decode and sampling as the server;
 *   2. the round trip through a real WorkerPool and worker process with the synthetic test double
 *      (its "inference" is a few patch means, measured and subtracted): the server's payload
 *      preparation (toPayloads: base64, or a file write into a private temp dir, JPEG for file, raw
 *      RGB for rgb24-file), JSON-RPC serialisation, the pipe, the worker's parse and decode (or read),
 *      the result back;
 *   3. the worker's side alone, in-process (pose-service/bench/transport_decode.py): message parse
 *      and payload → RGB array with the worker's own decode_frame.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import type { FrameEncoding } from '../../protocol/index.js';
import { extractFrames, type FramePixels, ffmpegArgs } from '../../server/media/frame-source.js';
import { releasePayloads, toPayloads } from '../../server/pipeline/frame-payload.js';
import { WorkerPool } from '../../workers/index.js';
import { type Clip, clipFrameSource, type FrameSet, rawFrames } from './clips.js';
import type { BenchContext } from './context.js';
import { runPythonScript } from './python-script.js';
import { type Spread, spread } from './stats.js';

export const TRANSPORTS: FrameEncoding[] = ['jpeg', 'rgb24', 'file', 'rgb24-file'];

/** What ffmpeg outputs for a transport: raw RGB for rgb24 and rgb24-file, JPEG for jpeg and file. */
export function pixelsOf(transport: string): FramePixels {
  return transport === 'rgb24' || transport === 'rgb24-file' ? 'rgb24' : 'jpeg';
}

export interface FfmpegOutputCost {
  pixels: FramePixels;
  cpuMsPerFrame: Spread;
  wallMsPerFrame: Spread;
  bytesPerFrame: number;
}

export interface RoundTripCost {
  transport: FrameEncoding;
  /** toPayloads + releasePayloads (server side). */
  prepMs: Spread;
  /** Round trip minus the worker's inference: serialisation, pipe, worker parse+decode, result back. */
  overheadMs: Spread;
  /** Of which the worker's payload → RGB decode. */
  workerDecodeMs: Spread;
  /** prep + overhead: what the transport adds per frame. */
  totalMs: Spread;
  messageBytesPerFrame: number;
}

export interface WorkerSideCost {
  kind: string;
  messageBytesPerFrame: number;
  parseMs: Spread;
  decodeMs: Spread;
}

/** ffmpeg start → first frame, and → the first full batch (the pipeline's fixed start-up wait). */
export interface FirstBatchLatency {
  pixels: FramePixels;
  firstFrameMs: Spread;
  firstBatchMs: Spread;
}

export interface TransportResult {
  frames: number;
  width: number;
  height: number;
  ffmpeg: FfmpegOutputCost[];
  firstBatch: FirstBatchLatency[];
  roundTrip: RoundTripCost[];
  workerSide: WorkerSideCost[];
}

export async function runTransport(ctx: BenchContext, clip: Clip, frames: FrameSet, batchSize: number): Promise<TransportResult> {
  const raw = rawFrames(ctx, frames);
  const ffmpeg: FfmpegOutputCost[] = [];
  const firstBatch: FirstBatchLatency[] = [];
  for (const pixels of ['jpeg', 'rgb24'] as FramePixels[]) {
    ffmpeg.push(await ffmpegOutputCost(ctx, clip, frames.count, pixels));
    firstBatch.push(await firstBatchLatency(ctx, clip, batchSize, pixels));
  }

  const jpegs = Array.from({ length: frames.count }, (_, i) =>
    readFileSync(path.join(frames.dir, `frame-${String(i).padStart(6, '0')}.jpg`)),
  );
  const rawAll = readFileSync(raw);
  const size = frames.width * frames.height * 3;
  const rgbs = Array.from({ length: frames.count }, (_, i) => rawAll.subarray(i * size, (i + 1) * size));

  const roundTrip = await roundTripCosts(ctx, frames, jpegs, rgbs, batchSize);

  const py = await runPythonScript<{ kinds: Record<string, { messageBytesPerFrame: number; parseMs: number[]; decodeMs: number[] }> }>(
    ctx,
    'transport_decode.py',
    [
      '--frames',
      frames.dir,
      '--raw',
      raw,
      '--width',
      String(frames.width),
      '--height',
      String(frames.height),
      '--batch',
      String(batchSize),
      '--reps',
      String(ctx.reps),
    ],
  );
  const workerSide = Object.entries(py.kinds).map(([kind, k]) => ({
    kind,
    messageBytesPerFrame: k.messageBytesPerFrame,
    parseMs: spread(k.parseMs),
    decodeMs: spread(k.decodeMs),
  }));

  return { frames: frames.count, width: frames.width, height: frames.height, ffmpeg, firstBatch, roundTrip, workerSide };
}

/** ffmpeg's CPU per frame for one output format, from its own -benchmark report. */
async function ffmpegOutputCost(ctx: BenchContext, clip: Clip, frames: number, pixels: FramePixels): Promise<FfmpegOutputCost> {
  const args = ffmpegArgs(clipFrameSource(ctx, clip, frames, pixels)).map((a, i, all) => (all[i - 1] === '-loglevel' ? 'info' : a));
  const cpu: number[] = [];
  const wall: number[] = [];
  let bytes = 0;
  for (let rep = 0; rep < ctx.reps + 1; rep++) {
    const r = await new Promise<{ out: number; err: string }>((resolve, reject) => {
      const child = spawn(ctx.ffmpeg, ['-benchmark', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = 0;
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.length));
      child.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
      child.once('error', reject);
      child.once('close', (code) => (code === 0 ? resolve({ out, err }) : reject(new Error(`ffmpeg exited ${code}: ${err.slice(-500)}`))));
    });
    const m = /bench: utime=([\d.]+)s stime=([\d.]+)s rtime=([\d.]+)s/.exec(r.err);
    if (!m) throw new Error(`ffmpeg -benchmark printed no timing: ${r.err.slice(-300)}`);
    bytes = r.out / frames;
    if (rep === 0) continue; // warms the page cache
    cpu.push(((Number(m[1]) + Number(m[2])) * 1000) / frames);
    wall.push((Number(m[3]) * 1000) / frames);
  }
  return { pixels, cpuMsPerFrame: spread(cpu), wallMsPerFrame: spread(wall), bytesPerFrame: bytes };
}

async function firstBatchLatency(ctx: BenchContext, clip: Clip, batchSize: number, pixels: FramePixels): Promise<FirstBatchLatency> {
  const first: number[] = [];
  const batch: number[] = [];
  for (let rep = 0; rep < ctx.reps + 1; rep++) {
    const t0 = performance.now();
    let n = 0;
    let tFirst = NaN;
    for await (const _ of extractFrames(clipFrameSource(ctx, clip, clip.frames, pixels))) {
      if (n++ === 0) tFirst = performance.now() - t0;
      if (n >= batchSize) break; // ends ffmpeg
    }
    if (rep === 0) continue;
    first.push(tFirst);
    batch.push(performance.now() - t0);
  }
  return { pixels, firstFrameMs: spread(first), firstBatchMs: spread(batch) };
}

async function roundTripCosts(
  ctx: BenchContext,
  frames: FrameSet,
  jpegs: Buffer[],
  rgbs: Buffer[],
  batchSize: number,
): Promise<RoundTripCost[]> {
  const pool = new WorkerPool({
    python: ctx.python,
    serviceDir: path.join(ctx.repo, 'pose-service'),
    model: 'synthetic',
    device: 'cpu',
    threads: 1,
    workers: 1,
    startupTimeoutMs: 120_000,
    batchTimeoutMs: 60_000,
    logger: pino({ level: 'silent' }),
  });
  pool.start();
  const tempDir = mkdtempSync(path.join(os.tmpdir(), 'posepool-bench-'));
  try {
    if (!(await pool.whenReady(120_000))) throw new Error(`the synthetic worker did not start: ${JSON.stringify(pool.lastErrors())}`);
    const out: RoundTripCost[] = [];
    for (const transport of TRANSPORTS) {
      const pixels = pixelsOf(transport);
      const data = pixels === 'rgb24' ? rgbs : jpegs;
      const prep: number[] = [];
      const overhead: number[] = [];
      const decode: number[] = [];
      const total: number[] = [];
      let messageBytes = 0;
      for (let rep = 0; rep < ctx.reps + 1; rep++) {
        let p = 0;
        let o = 0;
        let d = 0;
        messageBytes = 0;
        for (let start = 0; start < data.length; start += batchSize) {
          const batch = data.slice(start, start + batchSize).map((buf, k) => ({
            index: start + k,
            timeMs: 0,
            width: frames.width,
            height: frames.height,
            pixels,
            data: buf,
          }));
          const t0 = performance.now();
          const payloads = await toPayloads(batch, transport, tempDir);
          const t1 = performance.now();
          const params = { requestId: 'bench', frames: payloads, options: { tracking: true } };
          messageBytes += Buffer.byteLength(JSON.stringify(params));
          const t2 = performance.now();
          const result = await pool.detect(params);
          const t3 = performance.now();
          await releasePayloads(payloads);
          const t4 = performance.now();
          if (result.frames.some((f) => f.error))
            throw new Error(`transport ${transport}: ${JSON.stringify(result.frames.find((f) => f.error))}`);
          p += t1 - t0 + (t4 - t3);
          o += t3 - t2 - result.timing.inferMs;
          d += result.timing.decodeMs;
        }
        if (rep === 0) continue; // the first pass warms the worker and the page cache
        const n = data.length;
        prep.push(p / n);
        overhead.push(o / n);
        decode.push(d / n);
        total.push((p + o) / n);
      }
      out.push({
        transport,
        prepMs: spread(prep),
        overheadMs: spread(overhead),
        workerDecodeMs: spread(decode),
        totalMs: spread(total),
        messageBytesPerFrame: messageBytes / data.length,
      });
    }
    return out;
  } finally {
    rmSync(tempDir, { recursive: true, force: true });
    await pool.close({ graceMs: 2000 });
  }
}
