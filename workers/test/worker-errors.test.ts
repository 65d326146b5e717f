import { describe, expect, it } from 'vitest';
import * as errors from '../worker-errors.js';

const {
  WORKER_ERROR_CODES,
  WorkerCrashedError,
  WorkerExitedError,
  WorkerStartupFailedError,
  PoolUnavailableError,
  lastPythonException,
  sanitize,
} = errors;

describe('worker error catalogue', () => {
  it('has one error class per code, each with that stable code', () => {
    const exported: unknown[] = Object.values(errors);
    const classes = exported.filter(
      (v): v is new (...args: never[]) => Error =>
        typeof v === 'function' && v.prototype instanceof Error && !['WorkerError', 'PoolError'].includes(v.name),
    );
    const codes = new Set<string>();
    for (const cls of classes) {
      // Read the code off an instance built with dummy arguments.
      const args: Record<string, unknown[]> = {
        WorkerStartupFailedError: [{ type: 'X', message: 'm', missingModule: null, hint: 'h', python: 'p' }],
        StartupTimeoutError: [1, 'p'],
        WorkerExitedError: [{ exitCode: 1, signal: null, stderrTail: [] }, 'p'],
        WorkerCrashedError: [{ exitCode: 1, signal: null, stderrTail: [] }, 'p'],
        WorkerTimeoutError: [1, 'p'],
        WorkerProtocolError: ['d', 'p'],
        WorkerRpcError: [1, 'm', 'p'],
        WorkerNotReadyError: ['w0', 'starting'],
        PoolUnavailableError: [[]],
        PoolBusyError: ['queue-full', 'd'],
        PoolClosedError: [],
        CancelledError: [],
      };
      expect(args[cls.name], `test knows ${cls.name}`).toBeDefined();
      const instance = new (cls as unknown as new (...a: unknown[]) => { code: string })(...args[cls.name]);
      expect(errors.isWorkerErrorCode(instance.code), `${cls.name}.code`).toBe(true);
      codes.add(instance.code);
    }
    expect([...codes].sort()).toEqual(Object.keys(WORKER_ERROR_CODES).sort());
  });

  it('keeps a Python startup failure as the Python exception, with interpreter and hint', () => {
    const err = new WorkerStartupFailedError({
      type: 'ModuleNotFoundError',
      message: "No module named 'cv2'",
      missingModule: 'cv2',
      hint: 'run `npm run setup`',
      python: '/venv/bin/python',
    });
    const last = err.toLastError(new Date(0));
    expect(last).toMatchObject({
      code: 'WORKER_STARTUP_FAILED',
      type: 'ModuleNotFoundError',
      message: "No module named 'cv2'",
      hint: 'run `npm run setup`',
      python: '/venv/bin/python',
      missingModule: 'cv2',
      summary: "ModuleNotFoundError: No module named 'cv2' (python: /venv/bin/python)",
      at: '1970-01-01T00:00:00.000Z',
    });
  });

  it('reads the exception off a traceback when the worker died without a structured failure', () => {
    const tail = ['Traceback (most recent call last):', '  File "x.py", line 1', "ModuleNotFoundError: No module named 'torch'"];
    expect(lastPythonException(tail)).toEqual({ type: 'ModuleNotFoundError', message: "No module named 'torch'", missingModule: 'torch' });
    const err = new WorkerExitedError({ exitCode: 1, signal: null, stderrTail: tail }, '/usr/bin/python3');
    expect(err.type).toBe('ModuleNotFoundError');
    expect(err.summary).toBe("ModuleNotFoundError: No module named 'torch' (python: /usr/bin/python3)");
    const bare = new WorkerExitedError(
      { exitCode: 1, signal: null, stderrTail: ['/usr/bin/python3: No module named posepool_worker'] },
      'py',
    );
    expect(bare.type).toBe('WorkerExited');
    expect(bare.message).toBe('the worker exited (exit code 1) before it said ready: /usr/bin/python3: No module named posepool_worker');
  });

  it('names a missing interpreter', () => {
    const enoent = Object.assign(new Error('spawn /nope ENOENT'), { code: 'ENOENT' });
    const err = new WorkerExitedError({ exitCode: null, signal: null, stderrTail: [] }, '/nope', enoent);
    expect(err.type).toBe('PythonNotFound');
    expect(err.message).toBe('the Python interpreter /nope was not found');
    expect(err.hint).toMatch(/POSE_PYTHON/);
  });

  it('describes a crash by its signal or exit code and the stderr tail', () => {
    const byKill = new WorkerCrashedError({ exitCode: null, signal: 'SIGKILL', stderrTail: ['loading'] }, 'py');
    expect(byKill.message).toBe('the worker died (signal SIGKILL) with a batch in flight: loading');
    const byCode = new WorkerCrashedError({ exitCode: 3, signal: null, stderrTail: ['RuntimeError: boom'] }, 'py', 'idle');
    expect(byCode.message).toBe('the worker died (exit code 3) while idle: RuntimeError: boom');
    expect(byCode.toLastError()).toMatchObject({ exitCode: 3, signal: null, stderrTail: ['RuntimeError: boom'] });
  });

  it('never lets pipe-error words through', () => {
    expect(sanitize('write EPIPE; write EOF; stdin write failed; write after end')).not.toMatch(
      /EPIPE|EOF|stdin write failed|write after end/,
    );
    const err = new WorkerCrashedError({ exitCode: null, signal: null, stderrTail: ['Error: write EPIPE'] }, 'py');
    expect(JSON.stringify(err.toLastError())).not.toMatch(/EPIPE|EOF/);
  });

  it('PoolUnavailableError carries the causes and says the first in its message', () => {
    const last = new WorkerStartupFailedError({
      type: 'ModuleNotFoundError',
      message: "No module named 'cv2'",
      missingModule: 'cv2',
      hint: 'pip install opencv-python-headless',
      python: '/p',
    }).toLastError();
    const err = new PoolUnavailableError([last]);
    expect(err.code).toBe('POOL_UNAVAILABLE');
    expect(err.lastErrors).toEqual([last]);
    expect(err.message).toBe(
      "no pose worker is ready: ModuleNotFoundError: No module named 'cv2' (python: /p). Fix: pip install opencv-python-headless",
    );
  });
});
