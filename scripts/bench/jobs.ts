/**
 * The jobs section: what the durable engine (BullMQ on a real redis-server) costs and buys, against
 * the in-memory engine, in one run. The synthetic TEST DOUBLE poses at a fixed cost per frame (a
 * sleep, not CPU), so two replicas on 2 cores can show the scaling a GPU fleet would:
 *   overhead   one small job at a time, POST → succeeded (polled every 10 ms), memory vs redis
 *   replicas   20 jobs posted at once to 1 replica vs 2 replicas (1 worker each)
 *   fan-out    one 300-frame job: 1 replica in one segment, 1 replica in segments (the cost per
 *              segment), 2 replicas in segments (the speed-up)
 *   resume     a replica SIGKILLed mid-job: kill → the job succeeded on the other replica
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loopClip } from '../long-clip.js';
import { startRedis } from '../redis-process.js';
import { type ServerProcess, startServer, until } from '../soak.js';
import { jobEnd, postJob } from '../soak-jobs.js';
import type { BenchContext } from './context.js';
import { median } from './stats.js';

export interface JobsBenchResult {
  /** Per-frame cost of the synthetic double (POSE_SYNTHETIC_FAULTS infer_ms), overhead and resume. */
  frameMs: number;
  overhead: { frames: number; jobs: number; memoryMs: number; redisMs: number };
  /** The replicas' jobs cost REPLICAS_FRAME_MS per frame: the sleep dominates, as a GPU model's time would. */
  replicas: { frameMs: number; jobs: number; frames: number; oneMs: number; twoMs: number };
  resume: { lockMs: number; stalledIntervalMs: number; frames: number; killToDoneMs: number; checkpointedBatches: number };
  /** One long job (FANOUT_FRAME_MS per frame): whole on 1 replica, in `segments` on 1 replica, in `segments` on 2. */
  fanOut: {
    frameMs: number;
    frames: number;
    segmentFrames: number;
    segments: number;
    wholeMs: number;
    splitOneMs: number;
    splitTwoMs: number;
  };
}

const FRAME_MS = 20;
const REPLICAS_FRAME_MS = 100;
const FANOUT_FRAME_MS = 50;
/** 300 frames in batches of 4: 10 segments, 5 per replica. */
const FANOUT_SEGMENT_FRAMES = 32;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runJobsBench(ctx: BenchContext, clipFile: string): Promise<JobsBenchResult> {
  const clip = readFileSync(clipFile);
  const storage = mkdtempSync(path.join(os.tmpdir(), 'posepool-bench-storage-'));
  const temp = mkdtempSync(path.join(os.tmpdir(), 'posepool-bench-'));
  const redis = await startRedis();
  const running: ServerProcess[] = [];
  const start = async (env: Record<string, string>) => {
    const s = await startServer({
      ...ctx.serverEnv,
      LOG_LEVEL: 'warn',
      POSE_PYTHON: ctx.python,
      POSE_MODEL: 'synthetic',
      POSE_WORKERS: '1',
      POSE_THREADS: '1',
      POSE_BATCH_SIZE: '4',
      POSE_SYNTHETIC_FAULTS: `infer_ms=${FRAME_MS}`,
      POSE_TEMP_DIR: temp,
      ...env,
    });
    running.push(s);
    await until(async () => (await fetch(`${s.url}/health`)).status === 200, 120_000);
    return s;
  };
  const stop = async () => {
    for (const s of running.splice(0)) {
      s.child.kill('SIGTERM');
      await s.exited;
    }
  };
  const durable = (extra: Record<string, string> = {}) => ({ REDIS_URL: redis.url, POSE_STORAGE_DIR: storage, ...extra });
  try {
    const frames = 8;
    const reps = ctx.quick ? 5 : 20;
    ctx.log(`jobs: overhead, ${reps} jobs of ${frames} frames one at a time, memory vs redis`);
    const oneAtATime = async (env: Record<string, string>) => {
      const s = await start(env);
      await job(s.url, clip, frames); // warm-up
      const times: number[] = [];
      for (let i = 0; i < reps; i++) {
        const t0 = performance.now();
        await job(s.url, clip, frames);
        times.push(performance.now() - t0);
      }
      await stop();
      return median(times);
    };
    const memoryMs = await oneAtATime({});
    const redisMs = await oneAtATime(durable());

    const many = ctx.quick ? 8 : 20;
    ctx.log(`jobs: ${many} jobs of ${frames} frames at once, 1 replica vs 2 (redis, 1 worker each)`);
    const burst = async (replicas: number) => {
      const servers: ServerProcess[] = [];
      for (let i = 0; i < replicas; i++) servers.push(await start(durable({ POSE_SYNTHETIC_FAULTS: `infer_ms=${REPLICAS_FRAME_MS}` })));
      const t0 = performance.now();
      await Promise.all(Array.from({ length: many }, (_, i) => job(servers[i % replicas].url, clip, frames)));
      const ms = performance.now() - t0;
      await stop();
      return ms;
    };
    const oneMs = await burst(1);
    const twoMs = await burst(2);

    const longClip = readFileSync(loopClip(ctx.ffmpeg, temp, clipFile));
    const longFrames300 = 300;
    const segments = Math.ceil(longFrames300 / FANOUT_SEGMENT_FRAMES);
    ctx.log(`jobs: one ${longFrames300}-frame job, whole on 1 replica, in ${segments} segments on 1 replica, then on 2`);
    const fanOut = async (replicas: number, segmentFrames: number) => {
      const env = durable({ POSE_SYNTHETIC_FAULTS: `infer_ms=${FANOUT_FRAME_MS}`, JOBS_SEGMENT_FRAMES: String(segmentFrames) });
      const servers: ServerProcess[] = [];
      for (let i = 0; i < replicas; i++) servers.push(await start(env));
      const t0 = performance.now();
      await job(servers[0].url, longClip, longFrames300);
      const ms = performance.now() - t0;
      await stop();
      return ms;
    };
    const wholeMs = await fanOut(1, 100_000);
    const splitOneMs = await fanOut(1, FANOUT_SEGMENT_FRAMES);
    const splitTwoMs = await fanOut(2, FANOUT_SEGMENT_FRAMES);

    ctx.log('jobs: resume after SIGKILL (JOBS_LOCK_MS=5000, JOBS_STALLED_INTERVAL_MS=1000)');
    const lock = { JOBS_LOCK_MS: '5000', JOBS_STALLED_INTERVAL_MS: '1000' };
    const a = await start(durable(lock));
    const b = await start(durable(lock));
    const longFrames = 60;
    const id = await post(a.url, clip, longFrames);
    for (;;) {
      const j = await get(a.url, id);
      if (j.progress.done >= longFrames / 3) break;
      await sleep(20);
    }
    // The runner is whichever replica took it; kill that one.
    const runner = (await fetchMetricJobsRunning(a.url)) > 0 ? a : b;
    const other = runner === a ? b : a;
    const checkpointedBatches = (await get(other.url, id)).progress.done / 4;
    const killedAt = performance.now();
    runner.child.kill('SIGKILL');
    await runner.exited;
    running.splice(running.indexOf(runner), 1);
    const end = await jobEnd(other.url, id, 20);
    if (end.state !== 'succeeded') throw new Error(`the resumed job ended ${end.status} ${end.state}`);
    const killToDoneMs = performance.now() - killedAt;
    await stop();
    return {
      frameMs: FRAME_MS,
      overhead: { frames, jobs: reps, memoryMs, redisMs },
      replicas: { frameMs: REPLICAS_FRAME_MS, jobs: many, frames, oneMs, twoMs },
      resume: { lockMs: 5000, stalledIntervalMs: 1000, frames: longFrames, killToDoneMs, checkpointedBatches },
      fanOut: {
        frameMs: FANOUT_FRAME_MS,
        frames: longFrames300,
        segmentFrames: FANOUT_SEGMENT_FRAMES,
        segments,
        wholeMs,
        splitOneMs,
        splitTwoMs,
      },
    };
  } finally {
    for (const s of running.splice(0)) s.child.kill('SIGKILL');
    await redis.dispose();
    rmSync(storage, { recursive: true, force: true });
    rmSync(temp, { recursive: true, force: true });
  }
}

async function post(url: string, clip: Buffer<ArrayBuffer>, frames: number): Promise<string> {
  const posted = await postJob(url, clip, { fps: '30', maxFrames: String(frames) });
  if (!posted.id) throw new Error(`POST /api/jobs: ${posted.refused}`);
  return posted.id;
}

async function get(url: string, id: string): Promise<{ progress: { done: number } }> {
  return (await (await fetch(`${url}/api/jobs/${id}`)).json()) as { progress: { done: number } };
}

/** POST, then poll until it succeeded. */
async function job(url: string, clip: Buffer<ArrayBuffer>, frames: number): Promise<void> {
  const id = await post(url, clip, frames);
  const end = await jobEnd(url, id, 10);
  if (end.state !== 'succeeded') throw new Error(`job ${id} ended ${end.status} ${end.state}`);
}

/** This replica's videos in progress (posepool_videos_active): 1 on the replica running the job. */
async function fetchMetricJobsRunning(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(/^posepool_videos_active (\d+)/m.exec(text)?.[1] ?? 0);
}
