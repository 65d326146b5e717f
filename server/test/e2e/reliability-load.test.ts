/**
 * Reliability under load: 20 concurrent uploads against 2 real Python workers (the `synthetic`
 * TEST DOUBLE model, 20 ms per frame). With a bounded queue (MAX_ACTIVE_VIDEOS=2,
 * MAX_QUEUED_VIDEOS=4) each caller gets 200 or 503 BUSY with Retry-After at once; with a queue
 * that holds them all, every one is served. Nobody hangs, no frame is lost, and nothing is left
 * behind: no temp dir, no busy worker, no timer.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UploadBody } from '../support/api-bodies.js';
import { getHealth, LEAKY, privateTmp, sleep } from '../support/reliability.js';
import { FIXTURES, startTestServer, type TestServer, upload, videoForm, waitFor } from '../support/test-server.js';

const tmp = privateTmp('load');
const CLIP = path.join(FIXTURES, 'messi-pan.mp4');
const FRAMES = 10; // fps 5 over the 2 s clip
const CALLERS = 20;

let bounded: TestServer;
let roomy: TestServer;

const common = { POSE_WORKERS: '2', POSE_BATCH_SIZE: '4', MAX_ACTIVE_VIDEOS: '2', POSE_SYNTHETIC_FAULTS: 'infer_ms=20' };

beforeAll(async () => {
  [bounded, roomy] = await Promise.all([
    startTestServer({ ...common, MAX_QUEUED_VIDEOS: '4' }),
    startTestServer({ ...common, MAX_QUEUED_VIDEOS: String(CALLERS) }),
  ]);
  await Promise.all([bounded, roomy].map((s) => waitFor(async () => (await getHealth(s.url)).status === 'ready', 90_000, 100)));
});
afterAll(async () => {
  await Promise.all([bounded?.close(), roomy?.close()]);
  tmp.restore();
});

interface Outcome {
  status: number;
  json: UploadBody;
  text: string;
  retryAfter: string | null;
  ms: number;
}

async function burst(server: TestServer, n: number): Promise<Outcome[]> {
  const t0 = Date.now();
  return Promise.all(
    Array.from({ length: n }, async () => {
      const res = await upload(server.url, videoForm(CLIP, { fps: '5', maxFrames: String(FRAMES) }));
      return { status: res.status, json: res.json, text: res.text, retryAfter: res.headers.get('retry-after'), ms: Date.now() - t0 };
    }),
  );
}

/** Every frame of a 200 is there, in order, and posed. */
function expectAllPosed(o: Outcome): void {
  expect(o.json.frames.map((f) => f.index)).toEqual(Array.from({ length: FRAMES }, (_, i) => i));
  expect(o.json.frames.every((f) => !f.error && f.persons.length === 1)).toBe(true);
  expect(o.json.summary).toMatchObject({ framesSampled: FRAMES, framesWithPose: FRAMES, framesFailed: 0 });
}

/** Nothing of the burst is left: workers idle, no request dir, no pending timer (beyond `timers`). */
async function expectQuiet(server: TestServer, timers: number): Promise<void> {
  const h = await getHealth(server.url);
  expect(h.http).toBe(200);
  expect(h.workers.map((w) => [w.state, w.restarts])).toEqual([
    ['ready', 0],
    ['ready', 0],
  ]);
  expect(readdirSync(server.config.tempDir)).toEqual([]);
  await waitFor(async () => activeTimers() <= timers, 2000, 50).catch(() => undefined);
  expect(activeTimers()).toBeLessThanOrEqual(timers);
}

/** Timers pending in this process (the servers run in it): a per-request timer not cleared shows here. */
const activeTimers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

describe(`${CALLERS} concurrent uploads, 2 workers`, () => {
  it('bounded queue (2 active + 4 queued): each gets 200 with every frame, or 503 BUSY with Retry-After at once; none hangs', async () => {
    await sleep(200);
    const timers = activeTimers();
    const out = await burst(bounded, CALLERS);
    const ok = out.filter((o) => o.status === 200);
    const busy = out.filter((o) => o.status === 503);
    expect(ok.length + busy.length, JSON.stringify(out.map((o) => o.status))).toBe(CALLERS);
    expect(ok.length).toBeGreaterThanOrEqual(6);
    expect(busy.length).toBeGreaterThanOrEqual(CALLERS - 6 - 2); // a few may fit in as the first ones finish
    for (const o of ok) expectAllPosed(o);
    for (const o of busy) {
      expect(o.json.error.code).toBe('BUSY');
      expect(Number(o.retryAfter)).toBeGreaterThan(0);
      expect(o.json.error.requestId).toMatch(/^[0-9a-f-]{36}$/);
      expect(o.text).not.toMatch(LEAKY);
      expect(o.ms).toBeLessThan(3000); // refused before the body is read, not after waiting
    }
    const slowest = Math.max(...out.map((o) => o.ms));
    expect(slowest).toBeLessThan(60_000);
    console.info(
      `[figures] load bounded: ${ok.length} x 200 (${ok.length * FRAMES} frames posed), ${busy.length} x 503 BUSY; slowest 200 after ${Math.max(...ok.map((o) => o.ms))} ms, slowest BUSY after ${Math.max(...busy.map((o) => o.ms))} ms`,
    );
    // No timer of a refused request is left pending (each BUSY used to keep its REQUEST_TIMEOUT_MS timer).
    await expectQuiet(bounded, timers);
  });

  it(`a queue that holds them all: all ${CALLERS} get 200 with every frame (${CALLERS * FRAMES} frames), none lost`, async () => {
    await sleep(200);
    const timers = activeTimers();
    const out = await burst(roomy, CALLERS);
    expect(out.map((o) => o.status)).toEqual(Array(CALLERS).fill(200));
    for (const o of out) expectAllPosed(o);
    const ids = new Set(out.map((o) => o.json.id));
    expect(ids.size).toBe(CALLERS);
    const times = out.map((o) => o.ms).sort((a, b) => a - b);
    console.info(
      `[figures] load roomy: ${CALLERS} x 200, ${CALLERS * FRAMES} frames posed, none lost; median ${times[CALLERS >> 1]} ms, slowest ${times[CALLERS - 1]} ms`,
    );
    await expectQuiet(roomy, timers);
  });
});
