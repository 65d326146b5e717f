/**
 * Faults mid-batch with real Python workers (synthetic test-double model): a crash is retried on
 * another worker, a poison frame that kills every worker comes back as per-frame WORKER_CRASHED, a
 * hang is killed at batchTimeoutMs and comes back as WORKER_TIMEOUT; dead workers are replaced and
 * close() leaves no child process.
 */
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { describeIfReady, whyNoRealWorkers } from '../support/prerequisites.js';
import { PIPE_NOISE, realPool, realPoolHarness, rgbBatch, until } from '../support/real-workers.js';

const { open, tmp } = realPoolHarness('faults');

describeIfReady('pool faults mid-batch (real Python workers)', whyNoRealWorkers(), () => {
  it('a worker killed mid-batch: the batch is retried on the other worker, every frame back; the dead one is replaced', async () => {
    const { pool, log } = realPool({ workers: 2, faults: `crash_on_batch=1,once=${join(tmp, 'crash')}` });
    open.push(pool);
    pool.start();
    expect(await until(() => pool.health().status === 'ready', 40_000)).toBe(true);
    const pidsBefore = pool.health().workers.map((w) => w.pid);

    const result = await pool.detect(rgbBatch('crash', 0, 4));
    expect(result.attempts).toBe(2);
    expect(result.frames.map((f) => [f.index, f.error, f.persons.length])).toEqual([
      [0, undefined, 1],
      [1, undefined, 1],
      [2, undefined, 1],
      [3, undefined, 1],
    ]);
    const crash = log.records().find((r) => String(r.msg).startsWith('worker crashed'));
    expect(crash).toMatchObject({ signal: 'SIGKILL' });
    expect(log.records().some((r) => r.msg === 'batch failed on its worker; retrying once on another worker')).toBe(true);

    expect(await until(() => pool.health().status === 'ready', 40_000)).toBe(true);
    const after = pool.health().workers;
    expect(after.reduce((n, w) => n + w.restarts, 0)).toBe(1);
    expect(after.map((w) => w.pid)).not.toEqual(pidsBefore);
    expect(log.lines.filter((l) => PIPE_NOISE.test(l))).toEqual([]);
  });

  it('a frame that kills every worker: per-frame WORKER_CRASHED for its batch, the other batches posed, in order', async () => {
    const { pool, log } = realPool({ workers: 2, faults: 'crash_on_frame=9' });
    open.push(pool);
    pool.start();
    expect(await until(() => pool.health().status === 'ready', 40_000)).toBe(true);

    const [poisoned, clean] = await Promise.all([pool.detect(rgbBatch('poison', 8, 3)), pool.detect(rgbBatch('clean', 0, 3))]);
    expect(clean.frames.map((f) => [f.index, f.error])).toEqual([
      [0, undefined],
      [1, undefined],
      [2, undefined],
    ]);
    expect(poisoned.attempts).toBe(2);
    expect(poisoned.frames.map((f) => f.index)).toEqual([8, 9, 10]);
    for (const f of poisoned.frames) {
      expect(f.persons).toEqual([]);
      expect(f.error?.code).toBe('WORKER_CRASHED');
      expect(f.error?.message).toMatch(/signal SIGKILL/);
    }
    expect(JSON.stringify(poisoned)).not.toMatch(PIPE_NOISE);
    // both dead workers are replaced
    expect(await until(() => pool.health().status === 'ready', 40_000)).toBe(true);
    expect(pool.health().workers.reduce((n, w) => n + w.restarts, 0)).toBe(2);
    expect(log.lines.filter((l) => PIPE_NOISE.test(l))).toEqual([]);
  });

  it('a hung batch: killed at batchTimeoutMs, retried once, then WORKER_TIMEOUT per frame; the worker is replaced', async () => {
    const { pool, log } = realPool({ workers: 1, faults: 'hang_on_batch=1', batchTimeoutMs: 1000 });
    open.push(pool);
    pool.start();
    expect(await pool.whenReady(40_000)).toBe(true);
    const firstPid = pool.health().workers[0].pid;
    const started = Date.now();
    const result = await pool.detect(rgbBatch('hang', 0, 2));
    expect(Date.now() - started).toBeGreaterThanOrEqual(2000); // two attempts, each killed at 1 s
    expect(result.attempts).toBe(2);
    expect(result.frames.map((f) => f.error?.code)).toEqual(['WORKER_TIMEOUT', 'WORKER_TIMEOUT']);
    expect(result.frames[0].error?.message).toMatch(/longer than 1000 ms/);
    const timeouts = log.records().filter((r) => r.msg === 'batch timed out; killing the worker');
    expect(timeouts).toHaveLength(2);
    expect(await until(() => pool.health().workers[0].state === 'ready', 40_000)).toBe(true);
    expect(pool.health().workers[0].pid).not.toBe(firstPid);
    expect(pool.health().workers[0].restarts).toBe(2);
  });
});
