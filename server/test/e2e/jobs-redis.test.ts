/**
 * Durable jobs (REDIS_URL): two real server processes (replicas) sharing one real redis-server on
 * loopback and one storage folder, with the synthetic test double at a fixed per-frame cost so a
 * job lasts long enough to be followed, cancelled, killed and handed over.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { loopClip } from '../../../scripts/long-clip.js';
import { redisCommand, startRedis, type TestRedis, whyNoRedis } from '../../../scripts/redis-process.js';
import { jobsReportLines, runJobsSoak } from '../../../scripts/soak-jobs.js';
import { describeIfReady } from '../../../workers/test/support/prerequisites.js';
import type { JobBody } from '../support/api-bodies.js';
import { buildOnce, type ServerProcess, startServerProcess } from '../support/server-process.js';
import { readEvents } from '../support/sse.js';
import { FIXTURES, testPython, videoForm, waitFor, waitReady } from '../support/test-server.js';
import { findTools } from '../support/tools.js';

const CLIP = path.join(FIXTURES, 'vtest-3s.mp4');

interface Replica extends ServerProcess {
  name: string;
}

describeIfReady('durable jobs on Redis, two replicas', whyNoRedis(), () => {
  let redis: TestRedis;
  let storage: string;
  /** The replicas' POSE_TEMP_DIR: a SIGKILLed replica cannot remove its run's directory. */
  let temp: string;
  const replicas: Replica[] = [];

  beforeAll(async () => {
    buildOnce();
    redis = await startRedis({ appendonly: true });
    storage = mkdtempSync(path.join(os.tmpdir(), 'e2e-scratch-storage-'));
    temp = mkdtempSync(path.join(os.tmpdir(), 'e2e-scratch-temp-'));
  }, 120_000);

  afterEach(async () => {
    await Promise.all(replicas.splice(0).map(stopReplica));
  });

  afterAll(async () => {
    await redis?.dispose();
    for (const dir of [storage, temp]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function replica(name: string, env: Record<string, string> = {}): Promise<Replica> {
    const server = await startServerProcess({
      POSE_PYTHON: testPython(),
      POSE_MODEL: 'synthetic',
      POSE_WORKERS: '1',
      POSE_THREADS: '1',
      POSE_BATCH_SIZE: '4',
      POSE_SYNTHETIC_FAULTS: 'infer_ms=60',
      REDIS_URL: redis.url,
      POSE_STORAGE_DIR: storage,
      POSE_TEMP_DIR: temp,
      JOBS_LOCK_MS: '2000',
      JOBS_STALLED_INTERVAL_MS: '1000',
      SHUTDOWN_GRACE_MS: '10000',
      LOG_LEVEL: 'info',
      ...env,
    });
    const r = { ...server, name };
    replicas.push(r);
    await waitReady(r.url);
    return r;
  }

  async function post(r: Replica, fields: Record<string, string> = { fps: '10', maxFrames: '30' }): Promise<JobBody> {
    const res = await fetch(`${r.url}/api/jobs`, { method: 'POST', body: videoForm(CLIP, fields) });
    const body = (await res.json()) as JobBody;
    expect(res.status, JSON.stringify(body)).toBe(202);
    return body;
  }

  async function get(r: Replica, id: string): Promise<{ status: number; body: JobBody }> {
    const res = await fetch(`${r.url}/api/jobs/${id}`);
    return { status: res.status, body: (await res.json()) as JobBody };
  }

  async function finished(r: Replica, id: string, timeoutMs = 60_000): Promise<JobBody> {
    return waitFor(
      async () => {
        const { body } = await get(r, id);
        return ['succeeded', 'failed', 'cancelled'].includes(body.state) && body;
      },
      timeoutMs,
      100,
    );
  }

  /** The replica whose log says it ran the job. */
  function runner(id: string): Replica | undefined {
    return replicas.find((r) => r.output().includes(`"jobId":"${id}"`) && /segment running/.test(linesOf(r, id).join('\n')));
  }

  function linesOf(r: Replica, id: string): string[] {
    return r
      .output()
      .split('\n')
      .filter((l) => l.includes(`"jobId":"${id}"`));
  }

  function expectEveryFrameOnce(body: JobBody, n: number): void {
    expect(body.state).toBe('succeeded');
    const frames = body.result?.frames ?? [];
    expect(frames.map((f) => f.index)).toEqual(Array.from({ length: n }, (_, i) => i));
    expect(frames.every((f) => !f.error && f.persons.length === 1)).toBe(true);
  }

  it('POST on one replica; GET and events on the other; the result is every frame once, and only the result stays stored', async () => {
    const a = await replica('a');
    const b = await replica('b');
    const job = await post(a);
    expect(['queued', 'running']).toContain(job.state); // a free worker may take it before the 202 is written
    const events = await readEvents(`${b.url}/api/jobs/${job.id}/events`, { timeoutMs: 60_000 });
    expect(events.status).toBe(200);
    const kinds = events.events.map((e) => e.event);
    expect(kinds.at(-1)).toBe('done');
    expect(kinds.filter((k) => k === 'progress').length).toBeGreaterThan(1);
    const done = JSON.parse(events.events.at(-1)?.data ?? '{}') as JobBody;
    expect(done.state).toBe('succeeded');
    const body = (await get(b, job.id)).body;
    expectEveryFrameOnce(body, 30);
    expect(readdirSync(path.join(storage, 'jobs', job.id))).toEqual(['result.json']);
    const health = (await (await fetch(`${b.url}/health`)).json()) as { jobs: { engine: string; status: string } };
    expect(health.jobs).toEqual({ engine: 'redis', status: 'ready' });
  }, 120_000);

  /** Two replicas, a 30-frame job posted on the first, once the second reports `done` frames of it. */
  async function jobUnderWay(done: number, env: Record<string, string> = {}) {
    const a = await replica('a', env);
    const b = await replica('b', env);
    const job = await post(a, { fps: '10', maxFrames: '30' });
    await waitFor(async () => (await get(b, job.id)).body.progress.done >= done, 30_000);
    return { a, b, job };
  }

  it('DELETE on the other replica stops the running job within a batch and leaves no files', async () => {
    const { a, b, job } = await jobUnderWay(4);
    const del = await fetch(`${b.url}/api/jobs/${job.id}`, { method: 'DELETE' });
    expect(del.status).toBe(204);
    expect((await get(a, job.id)).status).toBe(404);
    const ran = await waitFor(async () => runner(job.id), 10_000);
    await waitFor(async () => linesOf(ran, job.id).some((l) => l.includes('job cancelled')), 10_000);
    await waitFor(async () => !(readdirSync(storage).includes('jobs') && readdirSync(path.join(storage, 'jobs')).includes(job.id)), 10_000);
  }, 120_000);

  it('SIGKILL of the replica running a job: the other resumes after the last checkpoint; every frame once', async () => {
    const { a, b, job } = await jobUnderWay(8);
    const ran = runner(job.id);
    expect(ran).toBeDefined();
    const other = ran === a ? b : a;
    const saved = readdirSync(path.join(storage, 'jobs', job.id, 'segments', '0', 'batches')).filter((f) => f.endsWith('.json')).length;
    const killedAt = Date.now();
    ran?.child.kill('SIGKILL');
    await ran?.exited;
    const body = await finished(other, job.id);
    expectEveryFrameOnce(body, 30);
    // The survivor posed only what was not saved: it logged how far the job was when it took it.
    const resumed = linesOf(other, job.id).find((l) => l.includes('segment running'));
    expect(resumed).toBeDefined();
    const progress = JSON.parse(resumed ?? '{}').progress as { done: number };
    expect(progress.done).toBeGreaterThanOrEqual(saved * 4);
    console.info(`[figures] resume after SIGKILL: ${saved} batches saved; finished ${Date.now() - killedAt} ms after the kill`);
  }, 120_000);

  it('SIGTERM hands the running job over at once (no lock timeout); it finishes on the other replica, every frame once', async () => {
    const { a, b, job } = await jobUnderWay(4, { JOBS_LOCK_MS: '30000' });
    const ran = runner(job.id);
    const other = ran === a ? b : a;
    const t0 = Date.now();
    ran?.child.kill('SIGTERM');
    const body = await finished(other, job.id, 25_000);
    expectEveryFrameOnce(body, 30);
    expect(Date.now() - t0).toBeLessThan(25_000); // well under the 30 s lock
    expect((await ran?.exited)?.code).toBe(0);
    expect(ran?.output()).toMatch(/segment handed back to the queue/);
  }, 120_000);

  it('Redis restarted mid-job: the job survives (appendonly) and finishes; /health names Redis while it is away', async () => {
    const a = await replica('a');
    const job = await post(a, { fps: '10', maxFrames: '30' });
    await waitFor(async () => (await get(a, job.id)).body.progress.done >= 4, 30_000);
    await redis.stop();
    const health = await waitFor(async () => {
      const res = await fetch(`${a.url}/health`);
      const h = (await res.json()) as { status: string; jobs: { status: string; lastError?: { message: string; hint: string } } };
      return h.jobs.status === 'unavailable' && { code: res.status, h };
    }, 10_000);
    expect(health.code).toBe(200); // the synchronous route needs no Redis
    expect(health.h.status).toBe('degraded');
    expect(health.h.jobs.lastError?.message).toMatch(/Redis at 127\.0\.0\.1/);
    expect(health.h.jobs.lastError?.hint).toMatch(/REDIS_URL/);
    const refused = await fetch(`${a.url}/api/jobs/${job.id}`);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('5');
    expect(((await refused.json()) as JobBody).error.code).toBe('QUEUE_UNAVAILABLE');
    const sync = await fetch(`${a.url}/api/upload-video-with-pose`, { method: 'POST', body: videoForm(CLIP, { maxFrames: '3' }) });
    expect(sync.status).toBe(200);
    await redis.start();
    const body = await finished(a, job.id, 90_000);
    expectEveryFrameOnce(body, 30);
  }, 180_000);

  it('Redis absent at start: the server serves, /health names Redis, jobs answer 503; once Redis starts, jobs work (no restart)', async () => {
    const later = await startRedis({ stopped: true });
    try {
      const a = await startServerProcess({
        POSE_PYTHON: testPython(),
        POSE_MODEL: 'synthetic',
        POSE_WORKERS: '1',
        REDIS_URL: later.url,
        POSE_STORAGE_DIR: storage,
        POSE_TEMP_DIR: temp,
      });
      replicas.push({ ...a, name: 'a' });
      await waitReady(a.url);
      const h = (await (await fetch(`${a.url}/health`)).json()) as {
        status: string;
        jobs: { status: string; lastError?: { message: string } };
      };
      expect(h.status).toBe('degraded');
      expect(h.jobs.lastError?.message).toMatch(new RegExp(`Redis at 127\\.0\\.0\\.1:${later.port} cannot be reached`));
      const refused = await fetch(`${a.url}/api/jobs`, { method: 'POST', body: videoForm(CLIP, { maxFrames: '4' }) });
      expect(refused.status).toBe(503);
      expect(((await refused.json()) as JobBody).error.code).toBe('QUEUE_UNAVAILABLE');
      await later.start();
      await waitFor(
        async () => ((await (await fetch(`${a.url}/health`)).json()) as { jobs: { status: string } }).jobs.status === 'ready',
        20_000,
      );
      const job = await post({ ...a, name: 'a' }, { fps: '10', maxFrames: '8' });
      expectEveryFrameOnce(await finished({ ...a, name: 'a' }, job.id), 8);
    } finally {
      await Promise.all(replicas.splice(0).map(stopReplica));
      await later.dispose();
    }
  }, 120_000);

  it('finished jobs, their Redis keys and their files go after JOBS_TTL_S', async () => {
    const a = await replica('a', { JOBS_TTL_S: '2' });
    const job = await post(a, { fps: '10', maxFrames: '8' });
    expectEveryFrameOnce(await finished(a, job.id), 8);
    expect(readdirSync(path.join(storage, 'jobs'))).toContain(job.id);
    await waitFor(async () => (await get(a, job.id)).status === 404, 10_000);
    await waitFor(async () => !readdirSync(path.join(storage, 'jobs')).includes(job.id), 10_000);
    const keys = await redisCommand(redis.port, 'KEYS', `*${job.id}*`);
    expect(keys).toEqual([]);
  }, 60_000);

  it('real MoveNet through the queue: a job posted on one replica and read on the other has real keypoints', async () => {
    const real = { POSE_MODEL: 'movenet-lightning', POSE_SYNTHETIC_FAULTS: '' };
    const a = await replica('a', real);
    const b = await replica('b', real);
    const job = await post(a, { fps: '5', maxFrames: '6' });
    const body = await finished(b, job.id, 90_000);
    expect(body.state).toBe('succeeded');
    expect(body.result?.model.name).toBe('movenet-lightning');
    expect(body.result?.frames.map((f) => f.index)).toEqual([0, 1, 2, 3, 4, 5]);
    const people = body.result?.frames.filter((f) => f.persons.length > 0 && f.persons[0].score > 0.2).length ?? 0;
    expect(people).toBeGreaterThan(0);
  }, 180_000);

  it('soak: 60 jobs with a 2 s JOBS_TTL_S leave Redis and the storage folder flat', async () => {
    const report = await runJobsSoak({ jobs: 60, ttlS: 2 });
    for (const line of jobsReportLines(report)) console.info(`[figures] ${line}`);
    expect(report.unexpected).toEqual([]);
    expect(report.succeeded).toBe(60);
    expect(report.violations).toEqual([]);
  }, 180_000);

  it('a 300-frame job fanned out over both replicas equals the one-replica result, frame for frame', async () => {
    const clip = loopClip(findTools().ffmpeg, temp, path.join(FIXTURES, 'messi-pan.mp4'));
    const fields = { fps: '30', maxFrames: '300' };
    const postClip = async (r: Replica) => {
      const res = await fetch(`${r.url}/api/jobs`, { method: 'POST', body: videoForm(clip, fields) });
      expect(res.status).toBe(202);
      return (await res.json()) as JobBody;
    };
    // One replica, one segment: the reference.
    const alone = await replica('alone', { POSE_SYNTHETIC_FAULTS: 'infer_ms=10', JOBS_SEGMENT_FRAMES: '100000' });
    const one = await finished(alone, (await postClip(alone)).id, 120_000);
    expectEveryFrameOnce(one, 300);
    await Promise.all(replicas.splice(0).map(stopReplica));

    // Two replicas, segments of 64 frames (16 batches of 4): 5 segments.
    const fanned = { POSE_SYNTHETIC_FAULTS: 'infer_ms=10', JOBS_SEGMENT_FRAMES: '64' };
    const a = await replica('a', fanned);
    const b = await replica('b', fanned);
    const job = await postClip(a);
    expect(job.progress.expected).toBe(300); // the plan's exact count, from the frame times
    // Followed on the other replica as it is posed: the frames stream from the shared checkpoints.
    const streamed = fetch(`${b.url}/api/jobs/${job.id}/frames`).then(async (res) =>
      (await res.text())
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l)),
    );
    const both = await finished(b, job.id, 120_000);
    expectEveryFrameOnce(both, 300);
    const segmentsOn = (r: Replica) => linesOf(r, job.id).filter((l) => l.includes('segment running')).length;
    expect(segmentsOn(a)).toBeGreaterThan(0);
    expect(segmentsOn(b)).toBeGreaterThan(0);
    expect(segmentsOn(a) + segmentsOn(b)).toBe(5);
    const strip = (f: NonNullable<JobBody['result']>['frames'][number]) => ({ index: f.index, timeMs: f.timeMs, persons: f.persons });
    expect(both.result?.frames.map(strip)).toEqual(one.result?.frames.map(strip));
    const lines = await streamed;
    expect(lines.slice(0, -1)).toEqual(both.result?.frames);
    expect(lines.at(-1)).toMatchObject({ done: true, job: { state: 'succeeded' } });
    expect(readdirSync(path.join(storage, 'jobs', job.id))).toEqual(['result.json']);
    console.info(
      `[figures] fan-out: 300 frames in 5 segments, ${segmentsOn(a)} posed on a, ${segmentsOn(b)} on b; equal to one replica's result`,
    );
  }, 300_000);

  it('DELETE of a fanned-out job stops its segments on both replicas; its keys and files go', async () => {
    const clip = loopClip(findTools().ffmpeg, temp, path.join(FIXTURES, 'messi-pan.mp4'));
    const fanned = { POSE_SYNTHETIC_FAULTS: 'infer_ms=40', JOBS_SEGMENT_FRAMES: '32' };
    const a = await replica('a', fanned);
    const b = await replica('b', fanned);
    const res = await fetch(`${a.url}/api/jobs`, { method: 'POST', body: videoForm(clip, { fps: '30', maxFrames: '300' }) });
    const job = (await res.json()) as JobBody;
    await waitFor(
      async () =>
        linesOf(a, job.id).some((l) => l.includes('segment running')) && linesOf(b, job.id).some((l) => l.includes('segment running')),
      30_000,
    );
    expect((await fetch(`${b.url}/api/jobs/${job.id}`, { method: 'DELETE' })).status).toBe(204);
    expect((await get(a, job.id)).status).toBe(404);
    await waitFor(async () => !readdirSync(path.join(storage, 'jobs')).includes(job.id), 15_000);
    await waitFor(
      async () =>
        ((await redisCommand(redis.port, 'KEYS', `*${job.id}*`)) as string[]).filter((k) => !k.includes('cancelled')).length === 0,
      15_000,
    );
    // No segment of it started after the DELETE.
    const started = (r: Replica) => linesOf(r, job.id).filter((l) => l.includes('segment running')).length;
    const before = started(a) + started(b);
    await new Promise((r) => setTimeout(r, 1500));
    expect(started(a) + started(b)).toBe(before);
  }, 120_000);

  it('20 jobs over 2 replicas with 1 worker each: none lost, each every frame once, both replicas ran some', async () => {
    const a = await replica('a', { POSE_SYNTHETIC_FAULTS: 'infer_ms=5' });
    const b = await replica('b', { POSE_SYNTHETIC_FAULTS: 'infer_ms=5' });
    const jobs = await Promise.all(Array.from({ length: 20 }, (_, i) => post(i % 2 ? a : b, { fps: '5', maxFrames: '10' })));
    for (const job of jobs) expectEveryFrameOnce(await finished(i2(a, b, job.id), job.id), 10);
    const ranOnA = jobs.filter((j) => linesOf(a, j.id).some((l) => l.includes('segment running'))).length;
    const ranOnB = jobs.filter((j) => linesOf(b, j.id).some((l) => l.includes('segment running'))).length;
    expect(ranOnA).toBeGreaterThan(0);
    expect(ranOnB).toBeGreaterThan(0);
  }, 180_000);
});

/** Either replica answers for any job. */
function i2<T>(a: T, b: T, id: string): T {
  return id.charCodeAt(0) % 2 ? a : b;
}

async function stopReplica(r: ServerProcess): Promise<void> {
  if (r.child.exitCode !== null || r.child.signalCode !== null) return;
  r.child.kill('SIGTERM');
  const timer = setTimeout(() => r.child.kill('SIGKILL'), 15_000);
  await r.exited;
  clearTimeout(timer);
}
