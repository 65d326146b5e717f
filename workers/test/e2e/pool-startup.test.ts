/**
 * The founding bug and its relatives, with real Python workers: an interpreter without cv2, a model
 * that fails to load, a worker that exits right after ready. The pool must show the real cause
 * fast, never a pipe error, stay near idle while it retries with backoff, and recover by itself.
 */
import { join } from 'node:path';
import { expect, it } from 'vitest';
import type { WorkerPool } from '../../pool.js';
import { PoolUnavailableError } from '../../worker-errors.js';
import type { CapturedLogger } from '../support/capture-logger.js';
import { buildCv2LessVenv, whyNoCv2LessVenv } from '../support/cv2-less-venv.js';
import { describeIfReady } from '../support/prerequisites.js';
import { PIPE_NOISE, realPool, realPoolHarness, rgbBatch, sleep, until } from '../support/real-workers.js';

const { open, tmp } = realPoolHarness('startup');

function noPipeNoise(pool: WorkerPool, log: CapturedLogger, extra: unknown[] = []): void {
  expect(JSON.stringify(pool.health())).not.toMatch(PIPE_NOISE);
  expect(JSON.stringify(pool.lastErrors())).not.toMatch(PIPE_NOISE);
  for (const e of extra) expect(JSON.stringify(e, Object.getOwnPropertyNames(e ?? {}))).not.toMatch(PIPE_NOISE);
  expect(log.lines.filter((l) => PIPE_NOISE.test(l))).toEqual([]);
}

function cpuMs(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1000;
}

describeIfReady('pool start-up failures (real Python workers)', whyNoCv2LessVenv(), () => {
  it('interpreter without cv2: 503 cause within 3 s, fast rejection, idle while retrying, ready once cv2 appears', async () => {
    const venv = await buildCv2LessVenv(join(tmp, 'venv-no-cv2'));
    const { pool, log } = realPool({ python: venv.python, workers: 2, backoff: { initialMs: 250, maxMs: 1000 } });
    open.push(pool);
    const cpu0 = process.cpuUsage();
    const t0 = Date.now();
    pool.start();

    expect(await until(() => pool.health().status === 'unavailable', 3000)).toBe(true);
    expect(Date.now() - t0).toBeLessThan(3000);
    const health = pool.health();
    expect(health).toMatchObject({ status: 'unavailable', ready: 0, desired: 2 });
    for (const w of health.workers) {
      expect(w.lastError).toMatchObject({
        type: 'ModuleNotFoundError',
        message: "No module named 'cv2'",
        python: venv.python,
        missingModule: 'cv2',
        summary: `ModuleNotFoundError: No module named 'cv2' (python: ${venv.python})`,
      });
      expect(w.lastError?.hint).toMatch(/npm run setup/);
      expect(w.lastError?.hint).toMatch(/opencv/);
    }

    const t1 = Date.now();
    const err = await pool.detect(rgbBatch('upload', 0, 2)).catch((e: unknown) => e);
    expect(Date.now() - t1).toBeLessThan(200);
    expect(err).toBeInstanceOf(PoolUnavailableError);
    expect((err as PoolUnavailableError).message).toContain("ModuleNotFoundError: No module named 'cv2'");
    expect((err as PoolUnavailableError).lastErrors[0]).toMatchObject({ type: 'ModuleNotFoundError', python: venv.python });

    // Keep failing for a while: backoff, not a spin.
    await sleep(3500 - (Date.now() - t0));
    const spent = cpuMs(cpu0);
    expect(spent).toBeLessThan(600); // of 3.5 s wall time; a create/acquire spin burns it all
    const delays = log
      .records()
      .filter((r) => r.msg === 'worker restart scheduled' && r.workerId === 'w0')
      .map((r) => r.delayMs as number);
    expect(delays.slice(0, 3)).toEqual([250, 500, 1000]);
    const errorLines = log.records().filter((r) => r.level === 50 && String(r.msg).startsWith('worker startup failed'));
    expect(errorLines).toHaveLength(1); // once per distinct cause; repeats go to debug
    expect(errorLines[0].msg).toContain("No module named 'cv2'");
    expect(pool.health().workers.map((w) => w.state)).toContain('failed');
    noPipeNoise(pool, log, [err]);

    // The fix lands in the same interpreter: the pool recovers without a restart of anything.
    await venv.addCv2();
    expect(await pool.whenReady(30_000)).toBe(true);
    expect(await until(() => pool.health().status === 'ready', 30_000)).toBe(true);
    const ready = pool.health();
    expect(ready.workers.map((w) => [w.state, w.lastError])).toEqual([
      ['ready', null],
      ['ready', null],
    ]);
    expect(ready.workers.every((w) => w.restarts >= 2)).toBe(true);
    const result = await pool.detect(rgbBatch('after-fix', 0, 2));
    expect(result.frames.map((f) => [f.index, f.error])).toEqual([
      [0, undefined],
      [1, undefined],
    ]);
    noPipeNoise(pool, log);
  });

  it('a model that fails to load: structured cause, growing backoff, failed after the crash window, near idle', async () => {
    const { pool, log } = realPool({
      faults: 'startup_crash',
      backoff: { initialMs: 200, maxMs: 5000 },
      crashLoop: { crashes: 2, windowMs: 60_000 },
    });
    open.push(pool);
    const cpu0 = process.cpuUsage();
    pool.start();
    expect(await until(() => pool.health().workers[0].state === 'failed', 20_000)).toBe(true);
    const [w] = pool.health().workers;
    expect(w.lastError).toMatchObject({ code: 'WORKER_STARTUP_FAILED', type: 'RuntimeError', exitCode: 3 });
    expect(w.restarts).toBe(1);
    expect(pool.health().status).toBe('unavailable');
    const delays = log
      .records()
      .filter((r) => r.msg === 'worker restart scheduled')
      .map((r) => r.delayMs);
    expect(delays).toEqual([200, 400]);
    expect(log.records().some((r) => r.msg === 'worker is crash-looping; marked failed (restarts continue with backoff)')).toBe(true);
    await expect(pool.detect(rgbBatch('x', 0, 1))).rejects.toBeInstanceOf(PoolUnavailableError);
    expect(cpuMs(cpu0)).toBeLessThan(1500); // Node side only: the Python imports are not ours
    noPipeNoise(pool, log);
  });

  it('a worker that exits right after ready is restarted with backoff, its exit code shown, then marked failed', async () => {
    const { pool, log } = realPool({
      faults: 'exit_after_ready',
      backoff: { initialMs: 200, maxMs: 5000 },
      crashLoop: { crashes: 2, windowMs: 60_000 },
    });
    open.push(pool);
    const exits: Array<{ exitCode: number | null }> = [];
    pool.on('worker-exit', (e) => exits.push(e));
    pool.start();
    expect(await until(() => pool.health().workers[0].state === 'failed', 20_000)).toBe(true);
    const [w] = pool.health().workers;
    expect(w.lastError).toMatchObject({ code: 'WORKER_CRASHED', exitCode: 3 });
    expect(w.lastError?.message).toMatch(/exit code 3\) while idle/);
    expect(exits.map((e) => e.exitCode)).toEqual([3, 3]);
    expect(log.records().filter((r) => r.msg === 'worker ready')).toHaveLength(2);
    noPipeNoise(pool, log);
  });
});
