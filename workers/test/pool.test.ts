/** WorkerPool scheduling, retry, fail-fast and close, over in-memory test-double workers (real timers, short delays). */
import { afterEach, describe, expect, it } from 'vitest';
import type { WorkerPool, WorkerPoolOptions } from '../pool.js';
import { CancelledError, PoolBusyError, PoolClosedError, PoolUnavailableError } from '../worker-errors.js';
import { type FakeScript, fakeBatch, fakePool } from './support/fake-worker.js';

const pools: WorkerPool[] = [];

function makePool(script: FakeScript, opts: Partial<WorkerPoolOptions> = {}) {
  const made = fakePool(script, opts);
  pools.push(made.pool);
  return made;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close({ graceMs: 200 })));
});

describe('WorkerPool (test-double workers)', () => {
  it('is ready only when N workers are warm, and reports starting → degraded → ready', async () => {
    const { pool } = makePool({ start: (i) => ({ kind: 'ready', afterMs: i === 0 ? 10 : 80 }) });
    pool.start();
    expect(pool.health()).toMatchObject({ status: 'starting', ready: 0, desired: 2 });
    expect(pool.isAvailable()).toBe(false);
    expect(await pool.whenReady(1000)).toBe(true);
    expect(pool.health()).toMatchObject({ status: 'degraded', ready: 1 });
    await sleep(120);
    const health = pool.health();
    expect(health).toMatchObject({ status: 'ready', ready: 2, desired: 2 });
    expect(health.workers.map((w) => [w.id, w.state, w.model, w.device, w.restarts, w.lastError])).toEqual([
      ['w0', 'ready', 'synthetic', 'cpu', 0, null],
      ['w1', 'ready', 'synthetic', 'cpu', 0, null],
    ]);
    expect(pool.model()).toMatchObject({ name: 'synthetic', device: 'cpu', keypoints: ['nose', 'left_eye', 'right_eye'] });
  });

  it('sends batches to all ready workers at once and returns frames in the order sent', async () => {
    const { pool, fleet } = makePool({ batch: () => ({ kind: 'ok', afterMs: 150, reverse: true }) });
    pool.start();
    await pool.whenReady(1000);
    await sleep(10);
    const started = Date.now();
    const results = await Promise.all([pool.detect(fakeBatch('a', [0, 1, 2])), pool.detect(fakeBatch('a', [3, 4, 5]))]);
    const elapsed = Date.now() - started;
    expect(elapsed).toBeLessThan(290); // in parallel, not 2 × 150 ms
    expect(new Set(results.map((r) => r.workerId))).toEqual(new Set(['w0', 'w1']));
    expect(results[0].frames.map((f) => f.index)).toEqual([0, 1, 2]);
    expect(results[1].frames.map((f) => f.index)).toEqual([3, 4, 5]);
    expect(results.every((r) => r.attempts === 1)).toBe(true);
    expect(fleet.violations()).toEqual([]);
  });

  it('retries a batch whose worker died on another worker; every frame comes back', async () => {
    const { pool, fleet, log } = makePool({
      batch: (w, k) => (w.spawnIndex === 0 && k === 1 ? { kind: 'crash', signal: 'SIGKILL', stderr: ['about to die'] } : { kind: 'ok' }),
    });
    pool.start();
    await pool.whenReady(1000);
    await sleep(10);
    const r = await pool.detect(fakeBatch('r', [7, 8]));
    expect(r.attempts).toBe(2);
    expect(r.frames.map((f) => [f.index, f.error])).toEqual([
      [7, undefined],
      [8, undefined],
    ]);
    expect(fleet.spawned[0].batches).toHaveLength(1);
    await sleep(100); // the dead one is replaced
    expect(fleet.spawned).toHaveLength(3);
    expect(pool.health()).toMatchObject({ status: 'ready', ready: 2 });
    expect(pool.health().workers[0].restarts).toBe(1);
    const crash = log.records().find((l) => String(l.msg).startsWith('worker crashed'));
    expect(crash).toMatchObject({ workerId: 'w0', signal: 'SIGKILL', stderrTail: ['about to die'] });
    expect(fleet.violations()).toEqual([]);
  });

  it('when the retry dies too, resolves with WORKER_CRASHED on each frame (exit cause in the message)', async () => {
    const { pool } = makePool({ batch: () => ({ kind: 'crash', exitCode: 139, stderr: ['Segmentation fault'] }) });
    pool.start();
    await pool.whenReady(1000);
    await sleep(10);
    const r = await pool.detect(fakeBatch('r', [1, 2, 3]));
    expect(r.attempts).toBe(2);
    expect(r.frames.map((f) => f.index)).toEqual([1, 2, 3]);
    for (const f of r.frames) {
      expect(f.persons).toEqual([]);
      expect(f.error?.code).toBe('WORKER_CRASHED');
      expect(f.error?.message).toMatch(/exit code 139.*Segmentation fault/);
    }
  });

  it('a batch past batchTimeoutMs kills its worker; retried, then WORKER_TIMEOUT per frame; the workers are replaced', async () => {
    const { pool, fleet } = makePool({ batch: (w) => (w.spawnIndex < 2 ? { kind: 'hang' } : { kind: 'ok' }) }, { batchTimeoutMs: 80 });
    pool.start();
    await pool.whenReady(1000);
    await sleep(10);
    const started = Date.now();
    const r = await pool.detect(fakeBatch('t', [0, 1]));
    expect(Date.now() - started).toBeLessThan(400);
    expect(r.frames.map((f) => f.error?.code)).toEqual(['WORKER_TIMEOUT', 'WORKER_TIMEOUT']);
    expect(r.frames[0].error?.message).toMatch(/longer than 80 ms/);
    await sleep(150);
    expect(fleet.spawned.length).toBe(4);
    expect(pool.health().status).toBe('ready');
    const ok = await pool.detect(fakeBatch('t2', [5]));
    expect(ok.frames[0].error).toBeUndefined();
  });

  it('a worker that died while idle is never lent', async () => {
    const { pool, fleet } = makePool({}, { workers: 2, backoff: { initialMs: 5000, maxMs: 5000 } });
    pool.start();
    await pool.whenReady(1000);
    await sleep(10);
    fleet.spawned[0].crash('SIGTERM');
    await sleep(5);
    const results = await Promise.all([1, 2, 3].map((i) => pool.detect(fakeBatch(`b${i}`, [i]))));
    expect(results.map((r) => r.workerId)).toEqual(['w1', 'w1', 'w1']);
    expect(results.every((r) => r.attempts === 1)).toBe(true);
    expect(fleet.violations()).toEqual([]);
  });

  it('rejects at once with PoolUnavailableError carrying the cause when every worker fails to start', async () => {
    const { pool, fleet } = makePool({ start: () => ({ kind: 'fail', afterMs: 5 }) });
    pool.start();
    await sleep(30);
    const health = pool.health();
    expect(health.status).toBe('unavailable');
    expect(health.workers[0].lastError).toMatchObject({
      type: 'ModuleNotFoundError',
      message: "No module named 'cv2'",
      hint: 'run `npm run setup`',
    });
    const started = Date.now();
    const err = await pool.detect(fakeBatch('u', [0])).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(50);
    expect(err).toBeInstanceOf(PoolUnavailableError);
    expect((err as PoolUnavailableError).lastErrors[0]).toMatchObject({ type: 'ModuleNotFoundError', python: '/fake/bin/python' });
    expect(pool.lastErrors()).toHaveLength(2);
    expect(JSON.stringify(pool.health())).not.toMatch(/EOF|EPIPE|stdin write failed/);
    expect(fleet.violations()).toEqual([]);
  });

  it('a batch waiting while workers warm up is rejected as soon as every start has failed', async () => {
    const { pool } = makePool({ start: () => ({ kind: 'fail', afterMs: 40 }) });
    pool.start();
    const started = Date.now();
    const err = await pool.detect(fakeBatch('w', [0])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PoolUnavailableError);
    expect(Date.now() - started).toBeLessThan(400); // not the 1000 ms startup timeout, nor the acquire timeout
  });

  it('does not spin: a failing start costs one spawn per backoff step and little CPU', async () => {
    const { pool, fleet } = makePool({ start: () => ({ kind: 'fail', afterMs: 1 }) }, { backoff: { initialMs: 50, maxMs: 100 } });
    const cpu0 = process.cpuUsage();
    pool.start();
    // callers keep coming while it fails
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < 20; i++) {
      calls.push(pool.detect(fakeBatch(`c${i}`, [i])).catch((e: unknown) => e));
      await sleep(50);
    }
    const errors = await Promise.all(calls);
    const cpu = process.cpuUsage(cpu0);
    expect(errors.filter((e) => e instanceof PoolUnavailableError).length).toBeGreaterThanOrEqual(18);
    // 1 s of failing with 50 → 100 ms backoff: about 10 spawns per slot, not thousands
    expect(fleet.spawned.length).toBeLessThan(30);
    expect((cpu.user + cpu.system) / 1000).toBeLessThan(500);
  });

  it('bounds the wait queue with PoolBusyError', async () => {
    const { pool } = makePool({ batch: () => ({ kind: 'ok', afterMs: 100 }) }, { workers: 1, maxQueuedBatches: 2 });
    pool.start();
    await pool.whenReady(1000);
    await sleep(5);
    const running = pool.detect(fakeBatch('a', [0]));
    await sleep(5);
    const queued = [pool.detect(fakeBatch('b', [1])), pool.detect(fakeBatch('c', [2]))];
    const err = await pool.detect(fakeBatch('d', [3])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PoolBusyError);
    expect((err as PoolBusyError).reason).toBe('queue-full');
    const done = await Promise.all([running, ...queued]);
    expect(done.map((r) => r.frames[0].index)).toEqual([0, 1, 2]);
  });

  it('cancels a queued batch without sending it, and drops the result of a running one', async () => {
    const { pool, fleet } = makePool({ batch: () => ({ kind: 'ok', afterMs: 60 }) }, { workers: 1 });
    pool.start();
    await pool.whenReady(1000);
    await sleep(5);
    const running = new AbortController();
    const queued = new AbortController();
    const p1 = pool.detect(fakeBatch('run', [0]), { signal: running.signal }).catch((e: unknown) => e);
    await sleep(5);
    const p2 = pool.detect(fakeBatch('queue', [1]), { signal: queued.signal }).catch((e: unknown) => e);
    await sleep(5);
    queued.abort();
    running.abort();
    expect(await p1).toBeInstanceOf(CancelledError);
    expect(await p2).toBeInstanceOf(CancelledError);
    await sleep(80);
    expect(fleet.spawned[0].batches.map((b) => b.requestId)).toEqual(['run']);
    // the worker was released after its batch, and serves the next caller
    const next = await pool.detect(fakeBatch('next', [2]));
    expect(next.workerId).toBe('w0');
    const aborted = new AbortController();
    aborted.abort();
    await expect(pool.detect(fakeBatch('x', [3]), { signal: aborted.signal })).rejects.toBeInstanceOf(CancelledError);
  });

  it('turns a worker-side BATCH_FAILED into INFERENCE_FAILED frames and keeps the worker', async () => {
    const { pool, fleet } = makePool(
      { batch: (_w, k) => (k === 1 ? { kind: 'rpc-error', code: -32002, message: 'RuntimeError: boom' } : { kind: 'ok' }) },
      { workers: 1 },
    );
    pool.start();
    await pool.whenReady(1000);
    const r = await pool.detect(fakeBatch('f', [4, 5]));
    expect(r.frames.map((f) => f.error)).toEqual([
      { code: 'INFERENCE_FAILED', message: 'RuntimeError: boom' },
      { code: 'INFERENCE_FAILED', message: 'RuntimeError: boom' },
    ]);
    expect(fleet.spawned).toHaveLength(1);
    expect((await pool.detect(fakeBatch('g', [6]))).frames[0].error).toBeUndefined();
  });

  it('close: queued callers get PoolClosedError, in-flight batches finish within the grace, workers shut down; idempotent', async () => {
    const { pool, fleet } = makePool({ batch: () => ({ kind: 'ok', afterMs: 50 }) }, { workers: 1 });
    pool.start();
    await pool.whenReady(1000);
    await sleep(5);
    const inflight = pool.detect(fakeBatch('in', [0]));
    await sleep(5);
    const queued = pool.detect(fakeBatch('q', [1])).catch((e: unknown) => e);
    const c1 = pool.close({ graceMs: 1000 });
    const c2 = pool.close({ graceMs: 1000 });
    expect(await queued).toBeInstanceOf(PoolClosedError);
    expect((await inflight).frames[0].error).toBeUndefined();
    await Promise.all([c1, c2]);
    expect(fleet.alive()).toHaveLength(0);
    expect(fleet.spawned[0].shutdownCalls).toBe(1);
    await expect(pool.detect(fakeBatch('late', [2]))).rejects.toBeInstanceOf(PoolClosedError);
    expect(pool.health().status).toBe('unavailable');
    expect(pool.health().workers[0].state).toBe('stopped');
  });

  it('close does not hang while creates are pending (workers that never become ready)', async () => {
    const { pool, fleet } = makePool({ start: () => ({ kind: 'never' }) });
    pool.start();
    const waiting = pool.detect(fakeBatch('w', [0])).catch((e: unknown) => e);
    await sleep(20);
    const started = Date.now();
    await pool.close({ graceMs: 100 });
    expect(Date.now() - started).toBeLessThan(1000);
    expect(await waiting).toBeInstanceOf(PoolClosedError);
    expect(fleet.alive()).toHaveLength(0);
  });

  it('emits worker-ready, worker-exit and worker-failed', async () => {
    const { pool, fleet } = makePool(
      { start: (i) => (i === 0 ? { kind: 'ready' } : { kind: 'fail', afterMs: 1 }) },
      { workers: 1, backoff: { initialMs: 5, maxMs: 10 }, crashLoop: { crashes: 2, windowMs: 10_000 } },
    );
    const events: string[] = [];
    pool.on('worker-ready', (e: { id: string }) => events.push(`ready:${e.id}`));
    pool.on('worker-exit', (e: { workerId: string; signal: string | null }) => events.push(`exit:${e.workerId}:${e.signal}`));
    pool.on('worker-failed', (e: { id: string }) => events.push(`failed:${e.id}`));
    pool.start();
    await pool.whenReady(1000);
    fleet.spawned[0].crash('SIGKILL');
    await sleep(100);
    expect(events.slice(0, 4)).toEqual(['ready:w0', 'exit:w0:SIGKILL', 'exit:w0:null', 'failed:w0']);
  });
});
