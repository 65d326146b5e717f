/** WorkerProcess against the real Python worker (model `synthetic`, a test double) and its fault injection. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, expect, it } from 'vitest';
import {
  StartupTimeoutError,
  WorkerCrashedError,
  WorkerExitedError,
  WorkerNotReadyError,
  WorkerStartupFailedError,
  WorkerTimeoutError,
} from '../../worker-errors.js';
import { WorkerProcess, type WorkerProcessOptions } from '../../worker-process.js';
import { captureLogger } from '../support/capture-logger.js';
import { describeIfReady, testPython, whyNoRealWorkers } from '../support/prerequisites.js';
import { childPids, PIPE_NOISE, rgbBatch, SERVICE_DIR } from '../support/real-workers.js';

const DEV_PYTHON = testPython() ?? 'python3';

const log = captureLogger('debug');
const spawned: WorkerProcess[] = [];

function worker(faults: string, extra: Partial<WorkerProcessOptions> = {}): WorkerProcess {
  const w = new WorkerProcess({
    id: `t${spawned.length}`,
    python: DEV_PYTHON,
    serviceDir: SERVICE_DIR,
    model: 'synthetic',
    device: 'cpu',
    threads: 1,
    startupTimeoutMs: 60_000,
    logger: log.logger,
    env: { POSE_SYNTHETIC_FAULTS: faults },
    ...extra,
  });
  spawned.push(w);
  return w;
}

afterAll(async () => {
  await Promise.all(spawned.map((w) => w.shutdown(500)));
  expect(childPids()).toEqual([]);
  expect(log.lines.filter((l) => PIPE_NOISE.test(l))).toEqual([]);
});

describeIfReady('WorkerProcess (real Python worker, synthetic test-double model)', whyNoRealWorkers(), () => {
  it('says ready, poses a batch with stdout noise kept off the protocol, answers health, and exits 0 on shutdown', async () => {
    const w = worker('print_stdout');
    expect(w.state).toBe('starting');
    await expect(w.detect(rgbBatch('early', 0, 1), 1000)).rejects.toBeInstanceOf(WorkerNotReadyError);
    const info = await w.ready;
    expect(info).toMatchObject({ pid: w.pid, python: DEV_PYTHON, model: { name: 'synthetic' }, device: 'cpu', threads: 1 });
    expect(info.model.keypoints).toHaveLength(17);
    expect(w.state).toBe('ready');
    const result = await w.detect(rgbBatch('r1', 0, 3), 20_000);
    expect(w.state).toBe('ready');
    expect(result.frames.map((f) => f.index)).toEqual([0, 1, 2]);
    expect(result.frames[0].persons[0].keypoints).toHaveLength(17);
    const health = await w.health(5000);
    expect(health).toMatchObject({ pid: w.pid, model: 'synthetic', batches: 1, frames: 3 });
    const exit = await w.shutdown(5000);
    expect(exit).toMatchObject({ exitCode: 0, signal: null, requested: true });
    expect(exit.error).toBeUndefined();
    expect(w.state).toBe('exited');
  });

  it('a death mid-batch rejects at once with the signal and the stderr tail, not at the timeout', async () => {
    const w = worker('crash_on_batch=1');
    await w.ready;
    const started = Date.now();
    const err = await w.detect(rgbBatch('c', 0, 2), 30_000).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(err).toBeInstanceOf(WorkerCrashedError);
    const crash = err as WorkerCrashedError;
    expect(crash.signal).toBe('SIGKILL');
    expect(crash.message).toMatch(/^the worker died \(signal SIGKILL\) with a batch in flight/);
    expect(crash.stderrTail?.length).toBeGreaterThan(0);
    const exit = await w.exited;
    expect(exit.requested).toBe(false);
    expect(exit.error).toBeInstanceOf(WorkerCrashedError);
  });

  it('a batch past its timeout is killed with SIGKILL and rejected with WorkerTimeoutError', async () => {
    const w = worker('hang_on_batch=1');
    await w.ready;
    const started = Date.now();
    const err = await w.detect(rgbBatch('h', 0, 1), 700).catch((e: unknown) => e);
    const waited = Date.now() - started;
    expect(err).toBeInstanceOf(WorkerTimeoutError);
    expect(w.state).not.toBe('ready'); // being killed: it must not be lent again
    await expect(w.detect(rgbBatch('h2', 1, 1), 700)).rejects.toBeInstanceOf(WorkerNotReadyError);
    expect(waited).toBeGreaterThanOrEqual(690);
    expect(waited).toBeLessThan(2000);
    const exit = await w.exited;
    expect(exit.signal).toBe('SIGKILL');
    expect(exit.error).toBeInstanceOf(WorkerTimeoutError);
  });

  it('a structured startup failure rejects ready with the Python exception, and the process exits 3', async () => {
    const w = worker('startup_crash');
    const err = await w.ready.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkerStartupFailedError);
    const failure = err as WorkerStartupFailedError;
    expect(failure.code).toBe('WORKER_STARTUP_FAILED');
    expect(failure.type).toBe('RuntimeError');
    expect(failure.python).toBe(DEV_PYTHON);
    expect(failure.hint.length).toBeGreaterThan(0);
    const exit = await w.exited;
    expect(exit.exitCode).toBe(3);
    expect(exit.error).toBe(failure);
  });

  it('exit right after ready is reported as a crash while idle with its exit code', async () => {
    const w = worker('exit_after_ready');
    await w.ready;
    const exit = await w.exited;
    expect(exit.exitCode).toBe(3);
    expect(exit.error).toBeInstanceOf(WorkerCrashedError);
    expect(exit.error?.message).toMatch(/exit code 3\) while idle/);
  });

  it('no ready within the startup timeout: killed and rejected with StartupTimeoutError', async () => {
    const w = worker('startup_delay_ms=30000', { startupTimeoutMs: 800 });
    const err = await w.ready.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StartupTimeoutError);
    expect((err as StartupTimeoutError).message).toBe('the worker did not say ready within 800 ms and was killed');
    const exit = await w.exited;
    expect(exit.signal).toBe('SIGKILL');
  });

  it('a missing interpreter and a wrong working directory are named, not reported as pipe errors', async () => {
    const missing = worker('', { python: '/nonexistent/bin/python3' });
    const e1 = await missing.ready.catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(WorkerExitedError);
    expect((e1 as WorkerExitedError).type).toBe('PythonNotFound');
    expect((e1 as WorkerExitedError).message).toBe('the Python interpreter /nonexistent/bin/python3 was not found');

    const empty = mkdtempSync(`${tmpdir()}/posepool-empty-`);
    try {
      const wrongDir = worker('', { serviceDir: empty });
      const e2 = await wrongDir.ready.catch((e: unknown) => e);
      expect(e2).toBeInstanceOf(WorkerExitedError);
      expect((e2 as WorkerExitedError).message).toMatch(/No module named posepool_worker/);
      expect((e2 as WorkerExitedError).exitCode).toBe(1);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
