/**
 * Results as they are posed: the synchronous route's NDJSON (Accept: application/x-ndjson), a job's
 * `/frames` NDJSON stream (resumable with ?from=) and its `frames` events, each equal to the final
 * result, frame for frame; and a 3000-frame job streamed to a slow reader (a separate server
 * process: its memory is its own).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PoseResponse } from '../../pipeline/pose-response.js';
import type { JobBody } from '../support/api-bodies.js';
import { buildOnce, startServerProcess } from '../support/server-process.js';
import { readEvents } from '../support/sse.js';
import { FIXTURES, startTestServer, type TestServer, testPython, videoForm, waitFor, waitReady } from '../support/test-server.js';
import { findTools } from '../support/tools.js';

const CLIP = path.join(FIXTURES, 'messi-pan.mp4');
type Frame = PoseResponse['frames'][number];

/** Reads an NDJSON response line by line; `onLine` may pause the reader (a slow client). */
async function readNdjson(res: Response, onLine?: (line: unknown, n: number) => Promise<void> | void): Promise<unknown[]> {
  const lines: unknown[] = [];
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    for (let end = buffer.indexOf('\n'); end >= 0; end = buffer.indexOf('\n')) {
      const line = JSON.parse(buffer.slice(0, end));
      buffer = buffer.slice(end + 1);
      lines.push(line);
      await onLine?.(line, lines.length);
    }
  }
  expect(buffer).toBe('');
  return lines;
}

async function postJob(url: string, fields: Record<string, string>, clip = CLIP): Promise<JobBody> {
  const res = await fetch(`${url}/api/jobs`, { method: 'POST', body: videoForm(clip, fields) });
  expect(res.status).toBe(202);
  return (await res.json()) as JobBody;
}

async function result(url: string, id: string): Promise<PoseResponse> {
  const body = await waitFor(async () => {
    const j = (await (await fetch(`${url}/api/jobs/${id}`)).json()) as JobBody;
    return j.state === 'succeeded' && j;
  }, 60_000);
  return body.result as PoseResponse;
}

describe('results as they are posed (synthetic double, 20 ms per frame)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ POSE_WORKERS: '2', POSE_BATCH_SIZE: '4', POSE_SYNTHETIC_FAULTS: 'infer_ms=20' });
    await waitReady(server.url);
  });
  afterAll(async () => server?.close());

  it('POST with Accept: application/x-ndjson streams each frame, then the body without frames; equal to the JSON answer', async () => {
    const form = () => videoForm(CLIP, { fps: '30' });
    const plain = (await (
      await fetch(`${server.url}/api/upload-video-with-pose`, { method: 'POST', body: form() })
    ).json()) as PoseResponse;
    const t0 = performance.now();
    let firstMs = 0;
    const res = await fetch(`${server.url}/api/upload-video-with-pose`, {
      method: 'POST',
      body: form(),
      headers: { accept: 'application/x-ndjson' },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    const lines = await readNdjson(res, (_l, n) => {
      if (n === 1) firstMs = performance.now() - t0;
    });
    const totalMs = performance.now() - t0;
    const last = lines.at(-1) as Omit<PoseResponse, 'frames'> & { done: boolean };
    const frames = lines.slice(0, -1) as Frame[];
    expect(last.done).toBe(true);
    expect(last.summary.framesSampled).toBe(plain.frames.length);
    expect(last.summary.framesWithPose).toBe(plain.summary.framesWithPose);
    expect(frames).toEqual(plain.frames);
    // Streamed, not sent at the end: the first frame came while the rest (56 frames, 2 workers, 80 ms a batch) still had to be posed.
    expect(totalMs - firstMs).toBeGreaterThan(400);
    console.info(
      `[figures] NDJSON, ${frames.length} frames: first frame after ${Math.round(firstMs)} ms, all after ${Math.round(totalMs)} ms`,
    );
  }, 60_000);

  it('an NDJSON request for a bad upload still gets the ordinary error response', async () => {
    const res = await fetch(`${server.url}/api/upload-video-with-pose`, {
      method: 'POST',
      body: videoForm(path.join(FIXTURES, '..', 'fixtures', 'messi-pan.mp4'), { fps: 'fast' }),
      headers: { accept: 'application/x-ndjson' },
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBeDefined();
  });

  it("a job's /frames streams every final frame in order from the first batch on; ?from= resumes; equal to the result", async () => {
    const job = await postJob(server.url, { fps: '30' });
    const t0 = performance.now();
    let firstMs = 0;
    const res = await fetch(`${server.url}/api/jobs/${job.id}/frames`);
    expect(res.status).toBe(200);
    const lines = await readNdjson(res, (_l, n) => {
      if (n === 1) firstMs = performance.now() - t0;
    });
    const totalMs = performance.now() - t0;
    const end = lines.at(-1) as { done: boolean; job: JobBody };
    expect(end.done).toBe(true);
    expect(end.job.state).toBe('succeeded');
    const final = await result(server.url, job.id);
    expect(lines.slice(0, -1)).toEqual(final.frames);
    expect(totalMs - firstMs).toBeGreaterThan(400);
    const resumed = await readNdjson(await fetch(`${server.url}/api/jobs/${job.id}/frames?from=45`));
    expect(resumed.slice(0, -1)).toEqual(final.frames.slice(45));
    console.info(
      `[figures] job /frames, ${final.frames.length} frames: first after ${Math.round(firstMs)} ms, done after ${Math.round(totalMs)} ms`,
    );
    expect((await fetch(`${server.url}/api/jobs/00000000-0000-4000-8000-000000000000/frames`)).status).toBe(404);
  }, 60_000);

  it('events with frames=true carry the frames in order, then done; ids count the frames sent', async () => {
    const job = await postJob(server.url, { fps: '15' });
    const stream = await readEvents(`${server.url}/api/jobs/${job.id}/events?frames=true`, { timeoutMs: 60_000 });
    expect(stream.status).toBe(200);
    const frames = stream.events.filter((e) => e.event === 'frames').flatMap((e) => JSON.parse(e.data) as Frame[]);
    expect(stream.events.at(-1)?.event).toBe('done');
    const final = await result(server.url, job.id);
    expect(frames).toEqual(final.frames);
    const lastFrames = stream.events.filter((e) => e.event === 'frames').at(-1);
    expect(Number(lastFrames?.id)).toBe(final.frames.length);
    // A reconnect with Last-Event-ID gets only what came after.
    const again = await readEvents(`${server.url}/api/jobs/${job.id}/events?frames=true`, { headers: { 'last-event-id': '20' } });
    const rest = again.events.filter((e) => e.event === 'frames').flatMap((e) => JSON.parse(e.data) as Frame[]);
    expect(rest).toEqual(final.frames.slice(20));
  }, 60_000);
});

describe('coaching angles (metrics=true) on every route', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ POSE_WORKERS: '2', POSE_BATCH_SIZE: '4' });
    await waitReady(server.url);
  });
  afterAll(async () => server?.close());

  const NAMES = ['kneeFlexionLeft', 'kneeFlexionRight', 'hipToBoard', 'shoulderToBoard', 'torsoInclination', 'stanceWidth'];

  it('per frame and per video, the same from the JSON answer, the NDJSON stream and a job; absent unless asked', async () => {
    const fields = { fps: '15', metrics: 'true' };
    const post = (headers: Record<string, string> = {}, f: Record<string, string> = fields) =>
      fetch(`${server.url}/api/upload-video-with-pose`, { method: 'POST', body: videoForm(CLIP, f), headers });
    const plain = (await (await post()).json()) as PoseResponse;
    expect(plain.frames.length).toBe(30);
    for (const f of plain.frames) expect(Object.keys(f.metrics ?? {}).sort()).toEqual([...NAMES].sort());
    const ranges = plain.summary.metrics ?? ({} as NonNullable<PoseResponse['summary']['metrics']>);
    expect(Object.keys(ranges).sort()).toEqual([...NAMES].sort());
    // The synthetic double's stick figure stands upright in every frame.
    expect(ranges.torsoInclination).toMatchObject({ min: 0, max: 0 });
    for (const r of Object.values(ranges)) if (r) expect(r.min <= r.mean && r.mean <= r.max).toBe(true);

    const lines = await readNdjson(await post({ accept: 'application/x-ndjson' }));
    expect(lines.slice(0, -1)).toEqual(plain.frames);
    expect((lines.at(-1) as PoseResponse).summary.metrics).toEqual(plain.summary.metrics);

    const job = await postJob(server.url, fields);
    const final = await result(server.url, job.id);
    expect(final.frames).toEqual(plain.frames);
    expect(final.summary.metrics).toEqual(plain.summary.metrics);

    const without = (await (await post({}, { fps: '15' })).json()) as PoseResponse;
    expect(without.frames.every((f) => f.metrics === undefined)).toBe(true);
    expect(without.summary.metrics).toBeUndefined();
  }, 60_000);
});

describe('a 3000-frame job streamed to a slow reader', () => {
  let tmp: string;
  beforeAll(() => {
    buildOnce();
    tmp = mkdtempSync(path.join(os.tmpdir(), 'posepool-stream-test-'));
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('keeps the server flat: every frame arrives once, in order, and resident memory grows by little', async () => {
    // messi-pan fifty times over: 100 s, 3000 frames at 30 fps (stream copy: no encoding).
    const clip = path.join(tmp, 'long.mp4');
    execFileSync(findTools().ffmpeg, ['-v', 'error', '-y', '-stream_loop', '49', '-i', CLIP, '-c', 'copy', clip]);
    const server = await startServerProcess({
      POSE_PYTHON: testPython(),
      POSE_MODEL: 'synthetic',
      POSE_WORKERS: '2',
      POSE_BATCH_SIZE: '16',
      MAX_UPLOAD_MB: '64',
      POSE_TEMP_DIR: tmp,
    });
    try {
      await waitReady(server.url);
      const rss = async () => {
        const text = await (await fetch(`${server.url}/metrics`)).text();
        return Number(/^process_resident_memory_bytes (\d+)/m.exec(text)?.[1]);
      };
      const before = await rss();
      const res = await fetch(`${server.url}/api/upload-video-with-pose`, {
        method: 'POST',
        body: videoForm(clip, { fps: '30', maxFrames: '3000' }),
        headers: { accept: 'application/x-ndjson' },
      });
      expect(res.status).toBe(200);
      let peak = before;
      const lines = await readNdjson(res, async (_l, n) => {
        // A reader slower than the pipeline: 1 ms per frame, a 2 s stall after the first 100.
        if (n === 100) await new Promise((r) => setTimeout(r, 2000));
        if (n % 500 === 0) peak = Math.max(peak, await rss());
        await new Promise((r) => setTimeout(r, 1));
      });
      const frames = lines.slice(0, -1) as Frame[];
      expect(frames.map((f) => f.index)).toEqual(Array.from({ length: 3000 }, (_, i) => i));
      expect((lines.at(-1) as { done: boolean }).done).toBe(true);
      const growthMb = (peak - before) / 1024 / 1024;
      console.info(
        `[figures] 3000 frames streamed to a slow reader: server RSS ${Math.round(before / 1048576)} MB → peak ${Math.round(peak / 1048576)} MB (+${growthMb.toFixed(1)} MB)`,
      );
      expect(growthMb).toBeLessThan(64);
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
  }, 240_000);
});
