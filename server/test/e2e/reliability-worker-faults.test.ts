/**
 * Reliability: worker faults while serving, through real HTTP, a real WorkerPool and real Python
 * workers running the `synthetic` TEST DOUBLE backend with its fault injection
 * (POSE_SYNTHETIC_FAULTS). For each fault: the status and codes the caller sees, every sampled
 * frame accounted for (posed, retried, or a per-frame error), the pool back to full strength, and
 * /health (recorded every 30 ms) telling the truth on the way.
 *
 * Two servers: "lifecycle" (2 workers: exit right after ready, SIGKILL mid-batch, SIGSTOP, a
 * client that hangs up mid-processing) and "in-worker errors" (1 worker, so its detect calls are
 * numbered: Python print and C-level writes to stdout on every batch, MemoryError, CUDA OOM, an
 * exception on one frame).
 */

import { readFileSync } from 'node:fs';
/**
 * Reliability: worker faults while serving, through real HTTP, a real WorkerPool and real Python
 * workers running the `synthetic` TEST DOUBLE backend with its fault injection
 * (POSE_SYNTHETIC_FAULTS). For each fault: the status and codes the caller sees, every sampled
 * frame accounted for (posed, retried, or a per-frame error), the pool back to full strength, and
 * /health (recorded every 30 ms) telling the truth on the way.
 *
 * Two servers: "lifecycle" (2 workers: exit right after ready, SIGKILL mid-batch, SIGSTOP, a
 * client that hangs up mid-processing) and "in-worker errors" (1 worker, so its detect calls are
 * numbered: Python print and C-level writes to stdout on every batch, MemoryError, CUDA OOM, an
 * exception on one frame).
 */
import path, { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PoseResponse } from '../../pipeline/pose-response.js';
import {
  getHealth,
  HealthRecorder,
  type HealthSnapshot,
  httpForStatus,
  isAlive,
  multipartHead,
  PIPE_NOISE,
  privateTmp,
  rawUpload,
  requestLines,
  sleep,
  totalRestarts,
} from '../support/reliability.js';
import { FIXTURES, startTestServer, type TestServer, upload, videoForm, waitFor } from '../support/test-server.js';

const tmp = privateTmp('faults');
const CLIP = path.join(FIXTURES, 'messi-pan.mp4'); // 548x342, 30 fps, 60 frames

afterAll(() => tmp.restore());

// The second server (errors inside one worker) starts while the first one's tests run: its worker
// start overlaps them instead of adding to the file's time.
let inWorkerStart: Promise<TestServer>;
beforeAll(() => {
  inWorkerStart = startTestServer({
    POSE_WORKERS: '1',
    POSE_BATCH_SIZE: '4',
    // Every detect prints with print(), os.write(1, …) and C printf; detect call 1 raises MemoryError,
    // call 4 a CUDA-OOM RuntimeError; frame 9 raises whenever it is posed.
    POSE_SYNTHETIC_FAULTS: 'print_stdout,memory_error_on_batch=1,cuda_oom_on_batch=4,frame_error=9',
  });
});

/** Every frame 0..n-1 present, in order. */
function expectAllFrames(body: PoseResponse, n: number): void {
  expect(body.frames.map((f) => f.index)).toEqual(Array.from({ length: n }, (_, i) => i));
  expect(body.summary.framesSampled).toBe(n);
}

/** The pino records of the batches sent for `requestId` (pool log, debug level). */
const batchesSent = (logs: string[], requestId: string) => requestLines(logs, requestId).filter((r) => r.msg === 'batch sent');

/** A pino record of the captured log; the fields the tests compare or pass on are typed. */
interface LogRecord {
  msg: string;
  time: number;
  /** Set on the pool's batch and worker records. */
  workerPid?: number;
  [field: string]: unknown;
}

/** Waits for the first log record matching `pick`, polling the captured lines every 5 ms. */
async function logRecord(logs: string[], pick: (r: LogRecord) => boolean, timeoutMs = 20_000): Promise<LogRecord> {
  return waitFor(
    async () => {
      for (const line of logs) {
        if (!line.startsWith('{')) continue;
        const r = JSON.parse(line) as LogRecord;
        if (pick(r)) return r;
      }
      return undefined;
    },
    timeoutMs,
    5,
  );
}

/** /health answered the HTTP code its own body implies, every time it was asked. */
function expectHonestCodes(snaps: HealthSnapshot[]): void {
  for (const s of snaps) {
    expect(s.http, JSON.stringify(s)).toBe(httpForStatus(s));
    expect(s.ready).toBe(s.workers.filter((w) => w.state === 'ready' || w.state === 'busy').length);
    expect(s.status).toBe(s.ready === s.desired ? 'ready' : s.ready > 0 ? 'degraded' : s.status);
  }
}

describe('lifecycle faults with 2 workers (synthetic test double; slow: each waits for a worker restart)', () => {
  let server: TestServer;
  let health: HealthRecorder;
  const once = join(tmp.dir, 'keep-once');

  beforeAll(async () => {
    server = await startTestServer({
      POSE_WORKERS: '2',
      POSE_BATCH_SIZE: '4',
      POSE_BATCH_TIMEOUT_MS: '2000',
      POSE_BACKOFF_INITIAL_MS: '200',
      POSE_BACKOFF_MAX_MS: '1000',
      // exit_after_ready: the first worker to be ready exits (code 3) at once; crash_on_batch=2: the first
      // worker to reach its 2nd batch SIGKILLs itself mid-batch. `once`: each fires once in all.
      POSE_SYNTHETIC_FAULTS: `exit_after_ready,crash_on_batch=2,infer_ms=40,once=${once}`,
    });
    health = new HealthRecorder(server.url);
  });
  afterAll(async () => {
    await health?.stop();
    await server?.close();
  });

  it('a worker exiting right after ready: replaced with backoff; /health showed its exit code on the way to ready', async () => {
    const ready = await waitFor(async () => {
      const h = await getHealth(server.url);
      return h.status === 'ready' && totalRestarts(h) === 1 && h;
    }, 90_000);
    expect(ready.workers.map((w) => w.state)).toEqual(['ready', 'ready']);
    const seen = health.snapshots;
    expect(seen[0].status).toBe('starting');
    expect(seen[0].http).toBe(503);
    // The slot whose worker exited showed the exit (code 3) while it was being replaced.
    const exitSeen = seen.find((s) => s.workers.some((w) => w.lastError && w.lastError.exitCode === 3));
    expect(exitSeen, 'the exit code was visible in /health').toBeDefined();
    expectHonestCodes(seen);
    const exit = await logRecord(server.logs, (r) => String(r.msg).startsWith('worker crashed'));
    expect(exit).toMatchObject({ exitCode: 3, signal: null });
    expect(exit.err).toMatch(/while idle/);
    expect(ready.workers.map((w) => w.pid)).not.toContain(exit.workerPid);
    expect(server.logs.filter((l) => l.includes('"msg":"batch sent"') && l.includes(`"workerPid":${exit.workerPid}`))).toEqual([]);
    expect(server.logs.join('\n')).not.toMatch(PIPE_NOISE);
  });

  it('SIGKILL mid-batch: 200, all 24 frames posed (the batch retried on the other worker), the worker replaced', async () => {
    const before = await getHealth(server.url);
    const t0 = Date.now();
    const res = await upload(server.url, videoForm(CLIP, { fps: '30', maxFrames: '24', smoothing: 'false' }));
    expect(res.status, res.text).toBe(200);
    expectAllFrames(res.json, 24);
    expect(res.json.frames.every((f) => !f.error && f.persons.length === 1)).toBe(true);
    expect(res.json.summary.framesFailed).toBe(0);

    const lines = requestLines(server.logs, res.json.id);
    expect(lines.filter((r) => r.msg === 'batch failed on its worker; retrying once on another worker')).toHaveLength(1);
    const crash = server.logs.map((l) => JSON.parse(l)).find((r) => String(r.msg).startsWith('worker crashed') && r.time >= t0);
    expect(crash).toMatchObject({ signal: 'SIGKILL' });
    expect(isAlive(crash.workerPid)).toBe(false);

    const after = await waitFor(async () => {
      const h = await getHealth(server.url);
      return h.status === 'ready' && totalRestarts(h) === totalRestarts(before) + 1 && h;
    }, 60_000);
    expect(after.workers.map((w) => w.pid)).not.toContain(crash.workerPid);
    // On the way: degraded (one ready) with the crash as the slot's lastError, never a 503.
    const during = health.since(t0);
    const degraded = during.find((s) => s.status === 'degraded');
    expect(degraded, JSON.stringify(health.statuses(t0))).toBeDefined();
    expect(degraded!.http).toBe(200);
    expect(degraded!.workers.find((w) => w.id === crash.workerId)?.lastError).toMatchObject({ type: 'WorkerCrashed' });
    expect(JSON.stringify(degraded!.workers)).toMatch(/SIGKILL/);
    expect(during.every((s) => s.http === 200)).toBe(true);
    expectHonestCodes(during);
  });

  it('SIGSTOP mid-batch (a hang): killed at POSE_BATCH_TIMEOUT_MS, the batch retried, 200 with all frames, the worker replaced', async () => {
    const before = await getHealth(server.url);
    const t0 = Date.now();
    const pending = upload(server.url, videoForm(CLIP, { fps: '30', maxFrames: '24', smoothing: 'false' }));
    const first = await logRecord(server.logs, (r) => r.msg === 'batch sent' && r.time >= t0);
    process.kill(first.workerPid!, 'SIGSTOP');
    const stoppedAt = Date.now();
    const res = await pending;
    const tookMs = Date.now() - stoppedAt;
    expect(res.status, res.text).toBe(200);
    expectAllFrames(res.json, 24);
    expect(res.json.frames.every((f) => !f.error && f.persons.length === 1)).toBe(true);
    console.info(`[figures] SIGSTOP mid-batch: 200 with 24/24 frames ${tookMs} ms after the stop (POSE_BATCH_TIMEOUT_MS=2000)`);
    // Held up by about the batch timeout (2 s), not longer.
    expect(tookMs).toBeGreaterThanOrEqual(1800);
    expect(tookMs).toBeLessThan(8000);
    const timedOut = await logRecord(server.logs, (r) => r.msg === 'batch timed out; killing the worker' && r.time >= t0);
    expect(timedOut.workerPid).toBe(first.workerPid);
    await waitFor(async () => !isAlive(first.workerPid!), 5000);

    const after = await waitFor(async () => {
      const h = await getHealth(server.url);
      return h.status === 'ready' && totalRestarts(h) === totalRestarts(before) + 1 && h;
    }, 60_000);
    expect(after.workers.map((w) => w.pid)).not.toContain(first.workerPid);
    const during = health.since(stoppedAt);
    // While stopped, the worker is reported busy (it holds a batch); after the kill its slot shows the timeout.
    expect(during.some((s) => s.workers.some((w) => w.pid === first.workerPid && w.state === 'busy'))).toBe(true);
    const replaced = during.find((s) => s.status === 'degraded' && s.workers.some((w) => w.lastError?.type === 'WorkerTimeout'));
    expect(replaced, JSON.stringify(health.statuses(stoppedAt))).toBeDefined();
    expect(replaced!.http).toBe(200);
    expectHonestCodes(during);
  });

  it('a client that hangs up mid-processing: the work is cancelled, no more batches go out, workers idle, temp dir gone', async () => {
    await waitFor(async () => (await getHealth(server.url)).status === 'ready', 60_000);
    const t0 = Date.now();
    // All 60 frames at 30 fps: 15 batches of 4, ~160 ms each (infer_ms=40), so ~1.2 s of work for 2 workers.
    const firstBatch = logRecord(server.logs, (r) => r.msg === 'batch sent' && r.time >= t0);
    const hung = await rawUpload(server.url, {
      head: multipartHead({ fps: '30', maxFrames: '60' }),
      file: readFileSync(CLIP),
      hangUpWhen: firstBatch,
    });
    expect(hung.status).toBeNull();
    expect(hung.clientError).toBe('hung up by the test');
    const requestId = String((await firstBatch).requestId);

    const gone = await logRecord(server.logs, (r) => r.reqId === requestId && r.msg === 'the client went away');
    expect(gone).toMatchObject({ code: 'BAD_REQUEST', status: 400 });
    await sleep(600);
    const sent = batchesSent(server.logs, requestId).length;
    await sleep(600);
    expect(batchesSent(server.logs, requestId).length).toBe(sent); // nothing more went out
    console.info(`[figures] hang-up mid-processing: ${sent} of 15 batches sent, then none; workers idle`);
    expect(sent).toBeLessThanOrEqual(4); // the first batch and those already in flight (workers + 1)
    expect(sent).toBeLessThan(15);
    const h = await getHealth(server.url);
    expect(h.workers.map((w) => w.state)).toEqual(['ready', 'ready']);
    expect(tmp.entries()).toEqual([]);
    // The next caller is served at once.
    const next = await upload(server.url, videoForm(CLIP, { maxFrames: '4' }));
    expect(next.status).toBe(200);
    expect(server.logs.join('\n')).not.toMatch(PIPE_NOISE);
  });
});

describe('errors inside one worker (1 worker, synthetic test double)', () => {
  let server: TestServer;
  let health: HealthRecorder;
  let pid: number;

  beforeAll(async () => {
    server = await inWorkerStart;
    const h = await waitFor(async () => {
      const s = await getHealth(server.url);
      return s.status === 'ready' && s;
    }, 90_000);
    pid = h.workers[0].pid!;
    health = new HealthRecorder(server.url);
  });
  afterAll(async () => {
    await health?.stop();
    await (server ?? (await inWorkerStart)).close();
  });

  /** 8 frames at 10 fps = exactly 2 detect calls of 4 frames. */
  const eight = () => upload(server.url, videoForm(CLIP, { fps: '10', maxFrames: '8', smoothing: 'false' }));

  /** The frames of one whole batch carry `code`, the other batch is posed. */
  function expectOneBatchFailed(body: PoseResponse, code: string, message: RegExp): number[] {
    expectAllFrames(body, 8);
    const failed = body.frames.filter((f) => f.error).map((f) => f.index);
    expect([
      [0, 1, 2, 3],
      [4, 5, 6, 7],
    ]).toContainEqual(failed);
    for (const f of body.frames) {
      if (f.error) {
        expect(f.persons).toEqual([]);
        expect(f.error.code).toBe(code);
        expect(f.error.message).toMatch(message);
      } else {
        expect(f.persons).toHaveLength(1);
      }
    }
    expect(body.summary).toMatchObject({ framesSampled: 8, framesWithPose: 4, framesFailed: 4 });
    return failed;
  }

  it("MemoryError in a batch: 200, that batch's 4 frames OUT_OF_MEMORY with the hint, the rest posed; the worker stays up", async () => {
    const res = await eight();
    expect(res.status, res.text).toBe(200);
    expectOneBatchFailed(
      res.json,
      'OUT_OF_MEMORY',
      /MemoryError.*lower POSE_BATCH_SIZE or POSE_WORKERS|lower POSE_BATCH_SIZE or POSE_WORKERS/s,
    );
  });

  it('a CUDA out-of-memory error: 200, OUT_OF_MEMORY on that batch with the hint, the rest posed; the worker stays up', async () => {
    const res = await eight();
    expect(res.status, res.text).toBe(200);
    expectOneBatchFailed(res.json, 'OUT_OF_MEMORY', /CUDA out of memory.*lower POSE_BATCH_SIZE or POSE_WORKERS/s);
  });

  it('an exception on one frame: 200, only that frame INFERENCE_FAILED, every other frame posed', async () => {
    const res = await upload(server.url, videoForm(CLIP, { fps: '10', maxFrames: '12', smoothing: 'false' }));
    expect(res.status, res.text).toBe(200);
    expectAllFrames(res.json, 12);
    const failed = res.json.frames.filter((f) => f.error);
    expect(failed.map((f) => [f.index, f.error!.code])).toEqual([[9, 'INFERENCE_FAILED']]);
    expect(failed[0].error!.message).toMatch(/frame_error fault on frame 9/);
    expect(res.json.summary).toMatchObject({ framesWithPose: 11, framesFailed: 1 });
  });

  it('print() and C-level writes to stdout on every batch: protocol intact, the text lands in the log as worker stderr', async () => {
    const stderrLines = server.logs.filter((l) => l.includes('"msg":"worker stderr"'));
    expect(stderrLines.some((l) => l.includes('print() text that must not reach the protocol stream'))).toBe(true);
    expect(stderrLines.some((l) => l.includes('garbage synthetic print_stdout fault: os.write(1)'))).toBe(true);
    expect(stderrLines.some((l) => l.includes('synthetic print_stdout fault: C printf'))).toBe(true);
    expect(server.logs.some((l) => l.includes('protocol error'))).toBe(false);
    expect(server.logs.join('\n')).not.toMatch(PIPE_NOISE);
  });

  it('through all of it: the same worker process, no restart, /health 200 ready at every poll', async () => {
    const snaps = await health.stop();
    expect(snaps.length).toBeGreaterThan(5);
    for (const s of snaps) {
      expect(s.http).toBe(200);
      expect(s.status).toBe('ready');
      expect(s.workers[0].pid).toBe(pid);
      expect(s.workers[0].restarts).toBe(0);
      expect(s.workers[0].lastError).toBeNull();
    }
    expect(isAlive(pid)).toBe(true);
  });
});
