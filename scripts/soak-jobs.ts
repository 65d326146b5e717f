/**
 * The jobs soak: N jobs through the durable engine (REDIS_URL) of the real server process, with a
 * short JOBS_TTL_S so that jobs expire while the run goes on. Figures before (after a warm-up) and
 * after: Redis's memory and key count, and the storage folder's entries and bytes. What expires must
 * go (keys, events, files), so both stay flat. Exit 1 when a figure grew past its bound.
 *
 *   node dist/scripts/soak-jobs.js [--jobs 500] [--ttl-s 3] [--json FILE]
 *
 * The synthetic TEST DOUBLE poses (it measures the queue and the storage, not a model).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from '../server/config.js';
import { redisCommand, startRedis } from './redis-process.js';
import { arg, startServer, until } from './soak.js';

const CLIP = path.join(REPO_ROOT, 'server', 'test', 'fixtures', 'vtest-3s.mp4');
/** Jobs posted at once (both workers busy, some waiting in the queue). */
const CONCURRENCY = 4;

export interface QueueFigures {
  redisUsedBytes: number;
  redisKeys: number;
  storageEntries: number;
  storageBytes: number;
}

export interface JobsSoakReport {
  jobs: number;
  ttlS: number;
  ms: number;
  succeeded: number;
  unexpected: string[];
  before: QueueFigures;
  after: QueueFigures;
  bounds: typeof JOBS_BOUNDS;
  violations: string[];
}

/** "Flat", stated: after the warm-up and after the last job expired, against the figures after the warm-up's expired. */
export const JOBS_BOUNDS = {
  /** Redis's allocator keeps some slack; a leak of 1 kB per job shows over 500 jobs. */
  redisUsedBytes: 512 * 1024,
  redisKeys: 0,
  storageEntries: 0,
  storageBytes: 0,
};

export async function runJobsSoak(o: { jobs: number; ttlS?: number; log?: (line: string) => void }): Promise<JobsSoakReport> {
  const ttlS = o.ttlS ?? 3;
  const log = o.log ?? (() => undefined);
  const warmup = Math.min(50, Math.max(4, Math.round(o.jobs / 10)));
  const redis = await startRedis();
  const storage = mkdtempSync(path.join(os.tmpdir(), 'posepool-soak-storage-'));
  const temp = mkdtempSync(path.join(os.tmpdir(), 'posepool-soak-'));
  const started = Date.now();
  const clip = readFileSync(CLIP);
  try {
    const server = await startServer({
      LOG_LEVEL: 'warn',
      POSE_MODEL: 'synthetic',
      POSE_WORKERS: '2',
      POSE_BATCH_SIZE: '4',
      POSE_TEMP_DIR: temp,
      REDIS_URL: redis.url,
      POSE_STORAGE_DIR: storage,
      JOBS_TTL_S: String(ttlS),
      JOBS_MAX: '1000',
    });
    await until(async () => (await fetch(`${server.url}/health`)).status === 200, 180_000);
    const unexpected: string[] = [];
    let succeeded = 0;
    const one = async (i: number) => {
      const posted = await postJob(server.url, clip, { fps: '5', maxFrames: '4' });
      if (!posted.id) {
        unexpected.push(`job ${i}: ${posted.refused}`);
        return;
      }
      const end = await jobEnd(server.url, posted.id, 50);
      if (end.state === 'succeeded' && end.frames === 4) succeeded++;
      else unexpected.push(`job ${i}: ${end.status} ${end.state}`);
    };
    const batch = async (from: number, to: number) => {
      for (let i = from; i < to; i += CONCURRENCY) {
        await Promise.all(Array.from({ length: Math.min(CONCURRENCY, to - i) }, (_, k) => one(i + k)));
        if ((i + CONCURRENCY) % 100 < CONCURRENCY) log(`soak-jobs: ${Math.min(i + CONCURRENCY, to)}/${o.jobs} jobs`);
      }
    };
    // Each figure is taken once everything finished has expired and been swept (TTL + one sweep).
    const settled = async () => {
      await sleep((2 * ttlS + 1) * 1000);
      return figures(redis.port, storage);
    };
    await batch(0, warmup);
    const before = await settled();
    await batch(warmup, o.jobs);
    const after = await settled();
    server.child.kill('SIGTERM');
    await server.exited;
    const violations: string[] = [];
    for (const key of Object.keys(JOBS_BOUNDS) as (keyof QueueFigures)[]) {
      if (after[key] - before[key] > JOBS_BOUNDS[key])
        violations.push(`${key} grew by ${after[key] - before[key]} (bound ${JOBS_BOUNDS[key]})`);
    }
    if (unexpected.length) violations.push(`${unexpected.length} jobs did not succeed`);
    return { jobs: o.jobs, ttlS, ms: Date.now() - started, succeeded, unexpected, before, after, bounds: JOBS_BOUNDS, violations };
  } finally {
    await redis.dispose();
    rmSync(storage, { recursive: true, force: true });
    rmSync(temp, { recursive: true, force: true });
  }
}

/** POSTs one job: its id, or how it was refused. */
export async function postJob(
  url: string,
  clip: Buffer<ArrayBuffer>,
  fields: Record<string, string>,
): Promise<{ id?: string; refused?: string }> {
  const form = new FormData();
  form.append('video', new Blob([clip]), 'clip.mp4');
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  const res = await fetch(`${url}/api/jobs`, { method: 'POST', body: form });
  const body = (await res.json()) as { id?: string; error?: { code: string } };
  return res.status === 202 && body.id ? { id: body.id } : { refused: `POST ${res.status} ${body.error?.code ?? ''}` };
}

/** Polls a job every `pollMs` until it ends (or GET stops answering 200): its last state and result size. */
export async function jobEnd(url: string, id: string, pollMs: number): Promise<{ status: number; state: string; frames?: number }> {
  for (;;) {
    const res = await fetch(`${url}/api/jobs/${id}`);
    const job = (await res.json()) as { state: string; result?: { frames: unknown[] } };
    if (res.status !== 200 || ['failed', 'cancelled', 'succeeded'].includes(job.state)) {
      return { status: res.status, state: job.state, frames: job.result?.frames.length };
    }
    await sleep(pollMs);
  }
}

async function figures(port: number, storage: string): Promise<QueueFigures> {
  const info = String(await redisCommand(port, 'INFO', 'memory'));
  const used = Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? Number.NaN);
  const keys = Number(await redisCommand(port, 'DBSIZE'));
  let entries = 0;
  let bytes = 0;
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, e.name);
      entries++;
      if (e.isDirectory()) walk(full);
      else bytes += statSync(full).size;
    }
  };
  walk(storage);
  return { redisUsedBytes: used, redisKeys: keys, storageEntries: entries, storageBytes: bytes };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function jobsReportLines(r: JobsSoakReport): string[] {
  const f = (q: QueueFigures) =>
    `Redis ${(q.redisUsedBytes / 1024 / 1024).toFixed(2)} MB in ${q.redisKeys} keys; storage ${q.storageEntries} entries, ${q.storageBytes} bytes`;
  return [
    `soak-jobs: ${r.jobs} jobs (JOBS_TTL_S=${r.ttlS}) in ${(r.ms / 1000).toFixed(0)} s: ${r.succeeded} succeeded, every frame posed`,
    `  before: ${f(r.before)}`,
    `  after:  ${f(r.after)}`,
    r.violations.length ? `soak-jobs: FAILED: ${r.violations.join('; ')}` : 'soak-jobs: PASS (Redis and storage flat)',
  ];
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const jobs = Number(arg('jobs', '500'));
  const ttlS = Number(arg('ttl-s', '3'));
  if (!Number.isInteger(jobs) || jobs < 1 || !Number.isInteger(ttlS) || ttlS < 1) {
    console.error('usage: node dist/scripts/soak-jobs.js [--jobs N] [--ttl-s N] [--json FILE]');
    process.exit(2);
  }
  runJobsSoak({ jobs, ttlS, log: (l) => console.log(l) })
    .then((report) => {
      for (const line of jobsReportLines(report)) console.log(line);
      const json = arg('json', '');
      if (json) writeFileSync(json, `${JSON.stringify(report, null, 2)}\n`);
      process.exit(report.violations.length ? 1 : 0);
    })
    .catch((err) => {
      console.error(`soak-jobs: could not run: ${(err as Error).message}`);
      process.exit(1);
    });
}
