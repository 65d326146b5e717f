/**
 * Scale: one upload of 30, 300 and 3000 frames (the source clip looped), each on a fresh server
 * process, so the server's peak resident memory (VmHWM) belongs to that size alone. Wall time and
 * frames/s too; the workers' peaks are reported apart (they hold the model, not the video).
 */
import type { PoseResponse } from '../../server/pipeline/pose-response.js';
import type { Clip } from './clips.js';
import type { BenchContext } from './context.js';
import { measureCpu } from './proc-cpu.js';
import { procMemory } from './proc-memory.js';
import { startBenchServer, uploadVideo, withMemory } from './server-process.js';

export interface ScaleRow {
  frames: number;
  clipBytes: number;
  wallMs: number;
  fps: number;
  /** Server resident memory once ready, before the upload. */
  serverIdleKb: number;
  serverPeakKb: number;
  workerPeakKb: number[];
  responseBytes: number;
  framesFailed: number;
  /** CPU of the server's own Node process per frame (ffmpeg and the workers apart). */
  serverCpuMsPerFrame: number;
}

export interface ScaleResult {
  model: string;
  workers: string;
  transport: string;
  rows: ScaleRow[];
}

export async function runScale(
  ctx: BenchContext,
  clips: Clip[],
  opts: { model: string; workers: string; transport: string; batchSize: number },
): Promise<ScaleResult> {
  const rows: ScaleRow[] = [];
  for (const clip of clips) {
    ctx.log(`scale: ${clip.frames} frames (${opts.model})`);
    const server = await startBenchServer(ctx, {
      POSE_MODEL: opts.model,
      POSE_WORKERS: opts.workers,
      POSE_THREADS: 'auto',
      POSE_TRANSPORT: opts.transport,
      POSE_BATCH_SIZE: String(opts.batchSize),
      POSE_DEVICE: 'cpu',
      MAX_FRAMES_LIMIT: String(Math.max(3000, clip.frames)),
    });
    try {
      const idle = procMemory(server.pid);
      const {
        value: measured,
        serverPeakKb,
        workerPeakKb,
      } = await withMemory(server, () =>
        measureCpu(server.pid, [], () => uploadVideo(server.url, clip.file, { fps: 10, maxFrames: clip.frames })),
      );
      const r = measured.value;
      if (r.status !== 200) throw new Error(`scale ${clip.frames}: upload answered ${r.status}: ${JSON.stringify(r.json).slice(0, 300)}`);
      const s = (r.json as PoseResponse).summary; // a 200 carries the pose result
      if (s.framesSampled !== clip.frames) throw new Error(`scale: expected ${clip.frames} frames, got ${s.framesSampled}`);
      rows.push({
        frames: clip.frames,
        clipBytes: clip.bytes,
        wallMs: r.wallMs,
        fps: clip.frames / (r.wallMs / 1000),
        serverIdleKb: idle?.rssKb ?? NaN,
        serverPeakKb,
        workerPeakKb,
        responseBytes: r.bodyBytes,
        framesFailed: s.framesFailed,
        serverCpuMsPerFrame: measured.serverMs / clip.frames,
      });
    } finally {
      await server.stop();
    }
  }
  return { model: opts.model, workers: opts.workers, transport: opts.transport, rows };
}
