/**
 * TEST DOUBLE: an in-memory PoseWorker for unit tests of the supervisor and the pool. No process,
 * no Python: each spawned FakeWorker follows a script (start ok / fail / exit / hang; per batch ok /
 * crash / hang / slow) and records what it was sent. It enforces the protocol rule that work goes
 * only to a worker that said ready: a violation is recorded in `violations` (tests assert it empty).
 */
import type { DetectParams, DetectResult, ReadyParams, WorkerHealthResult } from '../../../protocol/index.js';
import { WorkerPool, type WorkerPoolOptions } from '../../pool.js';
import type { PoseWorker, WorkerExit } from '../../pose-worker.js';
import {
  WorkerCrashedError,
  type WorkerError,
  WorkerExitedError,
  type WorkerExitInfo,
  WorkerNotReadyError,
  WorkerRpcError,
  WorkerStartupFailedError,
  WorkerTimeoutError,
} from '../../worker-errors.js';
import { type WorkerState, WorkerStateMachine } from '../../worker-state.js';
import { captureLogger } from './capture-logger.js';

export type StartBehaviour =
  | { kind: 'ready'; afterMs?: number }
  | { kind: 'fail'; afterMs?: number; type?: string; message?: string; hint?: string }
  | { kind: 'exit'; afterMs?: number; exitCode?: number; stderr?: string[] }
  | { kind: 'never' };

export type BatchBehaviour =
  | { kind: 'ok'; afterMs?: number; reverse?: boolean }
  | { kind: 'crash'; afterMs?: number; signal?: string; exitCode?: number; stderr?: string[] }
  | { kind: 'hang' }
  | { kind: 'rpc-error'; code: number; message: string };

export interface FakeScript {
  /** How the n-th spawned worker (0-based, over the whole fleet) starts. Default: ready at once. */
  start?: (spawnIndex: number, slotId: string) => StartBehaviour;
  /** How a worker answers its k-th batch (1-based, per worker). Default: ok after 5 ms. */
  batch?: (worker: FakeWorker, k: number, params: DetectParams) => BatchBehaviour;
}

export const FAKE_PYTHON = '/fake/bin/python';
const KEYPOINTS = ['nose', 'left_eye', 'right_eye'];

export function fakeReadyParams(pid: number): ReadyParams {
  return {
    pid,
    python: FAKE_PYTHON,
    pythonVersion: '3.11.2',
    model: {
      name: 'synthetic',
      keypoints: KEYPOINTS,
      skeleton: [
        [0, 1],
        [0, 2],
      ],
      extras: [],
    },
    device: 'cpu',
    threads: 1,
    versions: { python: '3.11.2' },
    loadMs: 1,
  };
}

let nextPid = 50_000;

export class FakeWorker implements PoseWorker {
  readonly id: string;
  readonly pid: number;
  readonly ready: Promise<ReadyParams>;
  readonly exited: Promise<WorkerExit>;
  readonly batches: DetectParams[] = [];
  readonly violations: string[] = [];
  shutdownCalls = 0;
  private readonly machine = new WorkerStateMachine();
  private readyInfo: ReadyParams | null = null;
  private resolveReady!: (p: ReadyParams) => void;
  private rejectReady!: (e: Error) => void;
  private resolveExited!: (e: WorkerExit) => void;
  private inflight: ((err: Error) => void) | null = null;
  private timers = new Set<NodeJS.Timeout>();
  private requested = false;
  private endError: WorkerError | undefined;

  constructor(
    id: string,
    readonly spawnIndex: number,
    private readonly script: FakeScript,
  ) {
    this.id = id;
    this.pid = nextPid++;
    this.ready = new Promise((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    this.ready.catch(() => undefined);
    this.exited = new Promise((resolve) => {
      this.resolveExited = resolve;
    });
    const start = script.start?.(spawnIndex, id) ?? { kind: 'ready' };
    if (start.kind === 'never') return;
    this.later(start.afterMs ?? 0, () => {
      if (this.machine.state !== 'starting') return;
      if (start.kind === 'ready') {
        this.readyInfo = fakeReadyParams(this.pid);
        this.machine.to('ready');
        this.resolveReady(this.readyInfo);
      } else if (start.kind === 'fail') {
        const err = new WorkerStartupFailedError({
          type: start.type ?? 'ModuleNotFoundError',
          message: start.message ?? "No module named 'cv2'",
          missingModule: 'cv2',
          hint: start.hint ?? 'run `npm run setup`',
          python: FAKE_PYTHON,
        });
        this.endError = err;
        this.machine.to('stopping');
        this.rejectReady(err);
        this.later(1, () => this.exit({ exitCode: 3, signal: null, stderrTail: [] }));
      } else {
        this.exit({ exitCode: start.exitCode ?? 1, signal: null, stderrTail: start.stderr ?? [] });
      }
    });
  }

  get state(): WorkerState {
    return this.machine.state;
  }

  get info(): ReadyParams | null {
    return this.readyInfo;
  }

  /** Dies now (as if killed from outside). */
  crash(signal: string | null = 'SIGKILL', exitCode: number | null = null, stderr: string[] = []): void {
    this.exit({ exitCode, signal, stderrTail: stderr });
  }

  detect(params: DetectParams, timeoutMs: number): Promise<DetectResult> {
    if (this.machine.state !== 'ready') {
      this.violations.push(`detect sent while ${this.machine.state}`);
      return Promise.reject(new WorkerNotReadyError(this.id, this.machine.state));
    }
    this.machine.to('busy');
    this.batches.push(params);
    const k = this.batches.length;
    const behaviour = this.script.batch?.(this, k, params) ?? { kind: 'ok', afterMs: 5 };
    return new Promise<DetectResult>((resolve, reject) => {
      let done = false;
      const finish = (fn: () => void) => {
        if (done) return;
        done = true;
        clearTimeout(timeout);
        this.inflight = null;
        fn();
      };
      this.inflight = (err) => finish(() => reject(err));
      const timeout = setTimeout(() => {
        this.machine.to('stopping'); // as WorkerProcess: a worker being killed is never ready again
        finish(() => reject(new WorkerTimeoutError(timeoutMs, FAKE_PYTHON)));
        this.endError = new WorkerTimeoutError(timeoutMs, FAKE_PYTHON);
        this.later(1, () => this.exit({ exitCode: null, signal: 'SIGKILL', stderrTail: [] }));
      }, timeoutMs);
      this.timers.add(timeout);
      if (behaviour.kind === 'ok') {
        this.later(behaviour.afterMs ?? 5, () =>
          finish(() => {
            if (this.machine.state === 'busy') this.machine.to('ready');
            const frames = params.frames.map((f) => ({
              index: f.index,
              persons: [{ score: 0.9, bbox: [0, 0, 1, 1] as [number, number, number, number], keypoints: [], worker: this.id }],
            }));
            if (behaviour.reverse) frames.reverse();
            resolve({ frames, timing: { decodeMs: 0, inferMs: 1, totalMs: 1 } });
          }),
        );
      } else if (behaviour.kind === 'crash') {
        this.later(behaviour.afterMs ?? 1, () =>
          this.exit({
            exitCode: behaviour.exitCode ?? null,
            signal: behaviour.signal ?? (behaviour.exitCode === undefined ? 'SIGKILL' : null),
            stderrTail: behaviour.stderr ?? [],
          }),
        );
      } else if (behaviour.kind === 'rpc-error') {
        this.later(1, () =>
          finish(() => {
            if (this.machine.state === 'busy') this.machine.to('ready');
            reject(new WorkerRpcError(behaviour.code, behaviour.message, FAKE_PYTHON));
          }),
        );
      }
      // 'hang': only the timeout settles it
    });
  }

  health(): Promise<WorkerHealthResult> {
    return Promise.resolve({
      pid: this.pid,
      model: 'synthetic',
      device: 'cpu',
      uptimeMs: 1,
      rssBytes: 1,
      gpuMemoryBytes: null,
      gpuMaxMemoryBytes: null,
      batches: this.batches.length,
      frames: 0,
    });
  }

  shutdown(): Promise<WorkerExit> {
    this.shutdownCalls++;
    this.requested = true;
    if (this.machine.state !== 'exited') {
      this.machine.to('stopping');
      this.later(1, () => this.exit({ exitCode: 0, signal: null, stderrTail: [] }));
    }
    return this.exited;
  }

  kill(): void {
    this.later(0, () => this.exit({ exitCode: null, signal: 'SIGKILL', stderrTail: [] }));
  }

  private exit(info: WorkerExitInfo): void {
    if (this.machine.state === 'exited') return;
    const was = this.machine.state;
    this.machine.to('exited');
    for (const t of this.timers) clearTimeout(t);
    let error: Error | undefined = this.endError;
    if (was === 'starting') {
      error = new WorkerExitedError(info, FAKE_PYTHON);
      this.rejectReady(error);
    } else if (!this.requested && !error) {
      error = new WorkerCrashedError(info, FAKE_PYTHON, was === 'busy' ? 'batch' : 'idle');
    }
    this.inflight?.(this.endError ?? new WorkerCrashedError(info, FAKE_PYTHON, 'batch'));
    this.resolveExited({ ...info, requested: this.requested, ...(error ? { error } : {}) });
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }
}

/** Spawns FakeWorkers for a Supervisor/WorkerPool and keeps every one it made. */
export class FakeFleet {
  readonly spawned: FakeWorker[] = [];
  constructor(public script: FakeScript = {}) {}

  readonly spawn = (id: string): FakeWorker => {
    const worker = new FakeWorker(id, this.spawned.length, this.script);
    this.spawned.push(worker);
    return worker;
  };

  violations(): string[] {
    return this.spawned.flatMap((w) => w.violations.map((v) => `${w.id}/${w.pid}: ${v}`));
  }

  alive(): FakeWorker[] {
    return this.spawned.filter((w) => w.state !== 'exited');
  }
}

/**
 * A WorkerPool over a FakeFleet following `script`: 2 single-thread workers, short timeouts and
 * backoff (startup 1 s, batch 200 ms, backoff 20 ms doubling to 200 ms); `opts` override any of it.
 */
export function fakePool(script: FakeScript, opts: Partial<WorkerPoolOptions> = {}) {
  const fleet = new FakeFleet(script);
  const log = captureLogger('debug');
  const pool = new WorkerPool({
    python: FAKE_PYTHON,
    serviceDir: '/nowhere',
    model: 'synthetic',
    device: 'cpu',
    threads: 1,
    workers: 2,
    startupTimeoutMs: 1000,
    batchTimeoutMs: 200,
    logger: log.logger,
    backoff: { initialMs: 20, maxMs: 200 },
    spawnWorker: (id) => fleet.spawn(id),
    ...opts,
  });
  return { pool, fleet, log };
}

/** A detect call for 1x1 raw frames with these indices. */
export function fakeBatch(requestId: string, indices: number[] = [0]): DetectParams {
  return {
    requestId,
    frames: indices.map((index) => ({ index, encoding: 'rgb24', width: 1, height: 1, data: 'AAAA' })),
  };
}
