/**
 * The jobs API end to end (real HTTP, real Python workers running the synthetic test double):
 * 202 → events → result equal to the synchronous route's, the same 4xx for bad uploads, BUSY from
 * the same admission, cancel, bounded retention, and no temporary directory left behind.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type TestRedis, whyNoRedis } from '../../../scripts/redis-process.js';
import { describeIfReady } from '../../../workers/test/support/prerequisites.js';
import type { PoseResponse } from '../../pipeline/pose-response.js';
import { getJob, postJob } from '../support/jobs-api.js';
import { readEvents } from '../support/sse.js';
import {
  FIXTURES,
  IMAGES,
  startTestServer,
  type TestServer,
  tempDirs,
  upload,
  videoForm,
  waitFor,
  waitReady,
} from '../support/test-server.js';

const without = (body: PoseResponse) => {
  // The parts of a pose response that differ between two runs of the same video.
  const { id: _id, summary, ...rest } = body;
  const { elapsedMs: _e, timing: _t, ...counts } = summary;
  return { ...rest, summary: counts };
};

/** The HTTP contract, the same on both engines: in memory (default), and BullMQ on a real redis-server (REDIS_URL). */
function jobsApiContract(engine: 'memory' | 'redis') {
  let server: TestServer;
  let redis: TestRedis | undefined;
  let storage: string | undefined;
  beforeAll(async () => {
    const env: Record<string, string> = { POSE_WORKERS: '2', POSE_BATCH_SIZE: '4', MAX_UPLOAD_MB: '2' };
    if (engine === 'redis') {
      redis = await startRedis();
      storage = mkdtempSync(path.join(os.tmpdir(), 'e2e-scratch-storage-'));
      Object.assign(env, { REDIS_URL: redis.url, POSE_STORAGE_DIR: storage });
    }
    server = await startTestServer(env);
    await waitReady(server.url);
  });
  afterAll(async () => {
    await server?.close();
    await redis?.dispose();
    if (storage) rmSync(storage, { recursive: true, force: true });
  });

  it('POST → 202 with a job; its events show progress up to done; the result equals the synchronous answer', async () => {
    const before = tempDirs().length;
    const clip = path.join(FIXTURES, 'messi-pan.mp4');
    const posted = await postJob(server.url, videoForm(clip, { role: 'coach', fps: '10' }));
    expect(posted.status).toBe(202);
    const job = posted.json;
    expect(job.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(['queued', 'running']).toContain(job.state);
    expect(posted.headers.get('location')).toBe(`/api/jobs/${job.id}`);
    expect(job.links).toEqual({ self: `/api/jobs/${job.id}`, events: `/api/jobs/${job.id}/events` });
    expect(job.progress.expected).toBe(20);
    expect(job.video).toMatchObject({ width: 548, height: 342, fps: 30 });

    const stream = await readEvents(`${server.url}${job.links.events}`);
    expect(stream.status).toBe(200);
    expect(stream.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const names = stream.events.map((e) => e.event);
    expect(names.at(-1)).toBe('done');
    expect(names.slice(0, -1).every((n) => n === 'progress')).toBe(true);
    const data = stream.events.map((e) => JSON.parse(e.data));
    const done = data.map((d) => d.progress.done);
    expect(done).toEqual([...done].sort((a, b) => a - b)); // never goes back
    expect(data.at(-1)).toMatchObject({ id: job.id, state: 'succeeded', progress: { done: 20, expected: 20, fraction: 1 } });

    const got = await getJob(server.url, job.id);
    expect(got.status).toBe(200);
    expect(got.json.state).toBe('succeeded');
    expect(got.json.expiresAt).toBeDefined();
    const result = got.json.result!;
    expect(result.id).toBe(job.id);
    expect(result.role).toBe('coach');
    expect(result.frames).toHaveLength(20);
    expect(result.summary).toMatchObject({ framesSampled: 20, framesWithPose: 20, framesFailed: 0 });

    const sync = await upload(server.url, videoForm(clip, { role: 'coach', fps: '10' }));
    expect(sync.status).toBe(200);
    expect(without(result)).toEqual(without(sync.json));

    // Its frames stream (NDJSON), the same frames, then the end.
    const lines = (await (await fetch(`${server.url}/api/jobs/${job.id}/frames?from=5`)).text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.slice(0, -1)).toEqual(result.frames.slice(5));
    expect(lines.at(-1)).toMatchObject({ done: true, job: { id: job.id, state: 'succeeded' } });

    // The job's temp dir is gone once it finished.
    await waitFor(async () => tempDirs().length === before, 5000);
  });

  it('a finished job: events give progress + done at once; a reconnect (Last-Event-ID) gets 204', async () => {
    const posted = await postJob(server.url, videoForm(path.join(FIXTURES, 'vtest-3s.mp4'), { maxFrames: '4' }));
    expect(posted.status).toBe(202);
    await waitFor(async () => (await getJob(server.url, posted.json.id)).json.state === 'succeeded', 20_000);
    const again = await readEvents(`${server.url}/api/jobs/${posted.json.id}/events`);
    expect(again.events.map((e) => e.event)).toEqual(['progress', 'done']);
    const reconnect = await readEvents(`${server.url}/api/jobs/${posted.json.id}/events`, { headers: { 'last-event-id': '2' } });
    expect(reconnect.status).toBe(204);
  });

  it("bad uploads get the synchronous route's codes, create no job and leave nothing behind", async () => {
    // The earlier tests' jobs remove their folders just after they report success: count from an idle server.
    await waitFor(async () => tempDirs().length === 0, 10_000);
    const before = tempDirs().length;
    const still = await postJob(server.url, videoForm(path.join(IMAGES, 'messi5.jpg'), {}, 'photo.jpg'));
    expect(still.status).toBe(415);
    expect(still.json.error.code).toBe('NOT_A_VIDEO');
    const badField = await postJob(server.url, videoForm(path.join(FIXTURES, 'vtest-3s.mp4'), { role: 'Bad Role!' }));
    expect(badField.status).toBe(400);
    expect(badField.json.error).toMatchObject({ code: 'BAD_FIELD', field: 'role' });
    const noVideo = await postJob(server.url, 'not multipart', { 'content-type': 'text/plain' });
    expect(noVideo.status).toBe(400);
    expect(noVideo.json.error.code).toBe('MISSING_VIDEO');
    const big = new FormData();
    big.append('video', new Blob([Buffer.alloc(3 * 1024 * 1024, 1)]), 'big.mp4');
    const tooBig = await postJob(server.url, big);
    expect(tooBig.status).toBe(413);
    expect(tooBig.json.error.code).toBe('UPLOAD_TOO_LARGE');
    expect(tempDirs().length).toBe(before);
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
  });

  it('unknown and malformed ids: 404 NOT_FOUND and 400 BAD_FIELD', async () => {
    const unknown = await getJob(server.url, '00000000-0000-4000-8000-000000000000');
    expect(unknown.status).toBe(404);
    expect(unknown.json.error.code).toBe('NOT_FOUND');
    const malformed = await getJob(server.url, 'nope');
    expect(malformed.status).toBe(400);
    expect(malformed.json.error.code).toBe('BAD_FIELD');
    const events = await fetch(`${server.url}/api/jobs/00000000-0000-4000-8000-000000000000/events`);
    expect(events.status).toBe(404);
  });
}

describe('jobs API (memory engine, synthetic backend)', () => jobsApiContract('memory'));
describeIfReady('jobs API (redis engine, synthetic backend)', whyNoRedis(), () => jobsApiContract('redis'));

describe('jobs obey admission, can be cancelled, and are kept bounded', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({
      POSE_WORKERS: '2',
      POSE_BATCH_SIZE: '2',
      MAX_ACTIVE_VIDEOS: '1',
      MAX_QUEUED_VIDEOS: '1',
      JOBS_MAX: '2',
      JOBS_TTL_S: '2',
      // Slow frames (the test double sleeps 100 ms per frame) so a job is still running when the next request comes.
      POSE_SYNTHETIC_FAULTS: 'infer_ms=100',
    });
    await waitReady(server.url);
  });
  afterAll(async () => server?.close());

  it('a job holds an admission place: the next waits (queued), the one after gets 503 BUSY; DELETE cancels', async () => {
    const before = tempDirs().length;
    const clip = path.join(FIXTURES, 'vtest-3s.mp4');
    const first = await postJob(server.url, videoForm(clip, { fps: '10' }));
    expect(first.status).toBe(202);
    const second = await postJob(server.url, videoForm(clip, { fps: '10' }));
    expect(second.status).toBe(202);
    expect(second.json.state).toBe('queued');

    const third = await postJob(server.url, videoForm(clip, { maxFrames: '2' }));
    expect(third.status).toBe(503);
    expect(third.json.error.code).toBe('BUSY');
    expect(third.headers.get('retry-after')).toBeTruthy();
    // The synchronous route shares the admission: BUSY too.
    const sync = await upload(server.url, videoForm(clip, { maxFrames: '2' }));
    expect(sync.status).toBe(503);
    expect(sync.json.error.code).toBe('BUSY');

    // Cancel the running one while someone follows it: the stream ends with `done` / cancelled.
    await waitFor(async () => (await getJob(server.url, first.json.id)).json.progress.done > 0, 10_000);
    const following = readEvents(`${server.url}/api/jobs/${first.json.id}/events`);
    await new Promise((r) => setTimeout(r, 100));
    const del = await fetch(`${server.url}/api/jobs/${first.json.id}`, { method: 'DELETE' });
    expect(del.status).toBe(204);
    const stream = await following;
    const last = JSON.parse(stream.events.at(-1)!.data);
    expect(stream.events.at(-1)!.event).toBe('done');
    expect(last).toMatchObject({ state: 'cancelled', error: { code: 'CANCELLED' } });
    expect(last.progress.done).toBeLessThan(30);
    expect((await getJob(server.url, first.json.id)).status).toBe(404);

    // The queued job gets the freed slot and finishes.
    await waitFor(async () => (await getJob(server.url, second.json.id)).json.state === 'succeeded', 20_000);
    await waitFor(async () => tempDirs().length === before, 5000);
  });

  it('keeps at most JOBS_MAX jobs (the oldest finished goes first) and forgets finished ones after JOBS_TTL_S', async () => {
    const clip = path.join(FIXTURES, 'vtest-3s.mp4');
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const posted = await postJob(server.url, videoForm(clip, { maxFrames: '2' }));
      expect(posted.status).toBe(202);
      ids.push(posted.json.id);
      await waitFor(async () => (await getJob(server.url, posted.json.id)).json.state === 'succeeded', 10_000);
    }
    expect((await getJob(server.url, ids[0])).status).toBe(404);
    expect((await getJob(server.url, ids[1])).status).toBe(200);
    expect((await getJob(server.url, ids[2])).status).toBe(200);
    await waitFor(async () => (await getJob(server.url, ids[2])).status === 404, 5000, 200);
    expect((await getJob(server.url, ids[1])).status).toBe(404);
  });
});

describe('jobs at shutdown', () => {
  it('a running job finishes within the grace period, a queued one ends SHUTTING_DOWN, no temp dir is left', async () => {
    const server = await startTestServer({
      POSE_WORKERS: '1',
      POSE_BATCH_SIZE: '2',
      MAX_ACTIVE_VIDEOS: '1',
      MAX_QUEUED_VIDEOS: '2',
      SHUTDOWN_GRACE_MS: '20000',
      POSE_SYNTHETIC_FAULTS: 'infer_ms=50',
    });
    try {
      await waitReady(server.url);
      const before = tempDirs().length;
      const clip = path.join(FIXTURES, 'vtest-3s.mp4');
      const running = (await postJob(server.url, videoForm(clip, { maxFrames: '12' }))).json;
      const queued = (await postJob(server.url, videoForm(clip, { maxFrames: '2' }))).json;
      expect(queued.state).toBe('queued');
      const runningEvents = readEvents(`${server.url}${running.links.events}`);
      const queuedEvents = readEvents(`${server.url}${queued.links.events}`);
      await waitFor(async () => (await getJob(server.url, running.id)).json.state === 'running', 10_000);

      const closing = server.close();
      const [r, q] = await Promise.all([runningEvents, queuedEvents]);
      expect(JSON.parse(r.events.at(-1)!.data)).toMatchObject({ state: 'succeeded', progress: { done: 12 } });
      expect(JSON.parse(q.events.at(-1)!.data)).toMatchObject({ state: 'failed', error: { code: 'SHUTTING_DOWN' } });
      await closing;
      expect(tempDirs().length).toBe(before);
    } finally {
      await server.close();
    }
  });
});
