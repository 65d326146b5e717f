/**
 * posepool end to end: the real server process, real workers, one upload at a time through HTTP
 * (upload → response), after one untimed warm-up upload (of the same clip, or of `warmUp` when
 * given: a long clip is warmed up with a short one). Each repetition gives frames/s and wall
 * time, and the split: receive+probe (server, before the pipeline), decode wait
 * (ffmpeg not hidden behind inference), and per-batch sums of inference, worker decode and
 * transport from the response's summary.timing, then the response (serialise, send, parse).
 */
import type { PoseResponse } from '../../server/pipeline/pose-response.js';
import type { Clip } from './clips.js';
import type { BenchContext } from './context.js';
import { measureCpu } from './proc-cpu.js';
import { startBenchServer, type UploadTiming, uploadVideo, withMemory } from './server-process.js';
import { type Spread, spread } from './stats.js';

export interface EndToEndConfig {
  model: string;
  workers: number;
  threads: number;
  transport: string;
  batchSize: number;
}

export interface EndToEndRep {
  wallMs: number;
  fps: number;
  uploadMs: number;
  /** Handler start → response object built (elapsedMs). */
  serverMs: number;
  /** Receiving the upload (the handler starts at the headers: the body streams in) and probing it: serverMs − pipeline totalMs. */
  receiveProbeMs: number;
  pipelineMs: number;
  decodeWaitMs: number;
  inferenceMs: number;
  workerDecodeMs: number;
  transportMs: number;
  batches: number;
  /**
   * wall − serverMs: the server's serialisation and send, the client's receive and parse (and the
   * request's headers reaching the handler, on loopback well under a millisecond).
   */
  responseMs: number;
  bodyBytes: number;
  frames: number;
  framesWithPose: number;
  framesFailed: number;
}

export interface EndToEndResult {
  config: EndToEndConfig;
  clipFrames: number;
  reps: EndToEndRep[];
  fps: Spread;
  wallMs: Spread;
  serverPeakKb: number;
  workerPeakKb: number[];
  /** CPU per frame over the timed repetitions: the server's Node process, its ffmpeg/ffprobe runs, the workers (summed). */
  cpuMsPerFrame: { server: number; mediaTools: number; workers: number };
  /** CPU of all those processes ÷ the timed wall time: the cores the run actually got. */
  coresUsed: number;
  startMs: number;
}

export async function runEndToEnd(
  ctx: BenchContext,
  config: EndToEndConfig,
  clip: Clip,
  reps = ctx.reps,
  warmUp: Clip = clip,
): Promise<EndToEndResult> {
  const t0 = performance.now();
  const server = await startBenchServer(ctx, {
    POSE_MODEL: config.model,
    POSE_WORKERS: String(config.workers),
    POSE_THREADS: String(config.threads),
    POSE_TRANSPORT: config.transport,
    POSE_BATCH_SIZE: String(config.batchSize),
    POSE_DEVICE: 'cpu',
    MAX_FRAMES_LIMIT: String(Math.max(3000, clip.frames, warmUp.frames)),
  });
  const startMs = performance.now() - t0;
  try {
    const fields = { fps: 10, maxFrames: clip.frames };
    const warm = await uploadVideo(server.url, warmUp.file, { fps: 10, maxFrames: warmUp.frames });
    checkResponse(warm, warmUp.frames);
    const workerPids = await server.workerPids();
    const {
      value: measured,
      serverPeakKb,
      workerPeakKb,
    } = await withMemory(server, () =>
      measureCpu(server.pid, workerPids, async () => {
        const out: EndToEndRep[] = [];
        for (let i = 0; i < reps; i++) out.push(toRep(checkResponse(await uploadVideo(server.url, clip.file, fields), clip.frames)));
        return out;
      }),
    );
    const runs = measured.value;
    const frames = reps * clip.frames;
    return {
      config,
      clipFrames: clip.frames,
      reps: runs,
      fps: spread(runs.map((r) => r.fps)),
      wallMs: spread(runs.map((r) => r.wallMs)),
      serverPeakKb,
      workerPeakKb,
      cpuMsPerFrame: {
        server: measured.serverMs / frames,
        mediaTools: measured.mediaToolsMs / frames,
        workers: measured.workersMs.reduce((a, b) => a + b, 0) / frames,
      },
      coresUsed:
        (measured.serverMs + measured.mediaToolsMs + measured.workersMs.reduce((a, b) => a + b, 0)) /
        runs.reduce((s, r) => s + r.wallMs, 0),
      startMs,
    };
  } finally {
    await server.stop();
  }
}

/** An upload answered with a pose result. */
type PosedUpload = UploadTiming & { json: PoseResponse };

function checkResponse(r: UploadTiming, frames: number): PosedUpload {
  if (r.status !== 200) throw new Error(`upload answered ${r.status}: ${JSON.stringify(r.json).slice(0, 500)}`);
  const posed = r as PosedUpload; // a 200 carries the pose result
  const got = posed.json?.summary?.framesSampled;
  if (got !== frames) throw new Error(`expected ${frames} frames in the response, got ${got}`);
  return posed;
}

function toRep(r: PosedUpload): EndToEndRep {
  const s = r.json.summary;
  const t: Partial<PoseResponse['summary']['timing']> = s.timing ?? {};
  const frames = s.framesSampled as number;
  const serverMs = s.elapsedMs as number;
  return {
    wallMs: r.wallMs,
    fps: frames / (r.wallMs / 1000),
    uploadMs: r.uploadMs,
    serverMs,
    receiveProbeMs: serverMs - (t.totalMs ?? 0),
    pipelineMs: t.totalMs ?? NaN,
    decodeWaitMs: t.decodeWaitMs ?? NaN,
    inferenceMs: t.inferenceMs ?? NaN,
    workerDecodeMs: t.workerDecodeMs ?? NaN,
    transportMs: t.transportMs ?? NaN,
    batches: t.batches ?? NaN,
    responseMs: r.wallMs - serverMs,
    bodyBytes: r.bodyBytes,
    frames,
    framesWithPose: s.framesWithPose,
    framesFailed: s.framesFailed,
  };
}
