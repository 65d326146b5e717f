/**
 * What the supervisor and the pool need of one worker. WorkerProcess (a real Python child process)
 * implements it; unit tests use in-memory test doubles.
 */
import type { DetectParams, DetectResult, ReadyParams, WorkerHealthResult } from '../protocol/index.js';
import type { WorkerExitInfo } from './worker-errors.js';
import type { WorkerState } from './worker-state.js';

export interface WorkerExit extends WorkerExitInfo {
  /** True when the server asked it to stop (shutdown, or a kill the server chose). */
  requested: boolean;
  /** The error that ended it, when the server observed one (crash, timeout, startup failure). */
  error?: Error;
}

export interface PoseWorker {
  readonly id: string;
  readonly pid: number | undefined;
  readonly state: WorkerState;
  /** The `worker/ready` params once ready. */
  readonly info: ReadyParams | null;
  /**
   * Resolves on `worker/ready`; rejects (WorkerError) on `worker/startupFailed`, on exit before
   * ready, or after the startup timeout (the process is then killed).
   */
  readonly ready: Promise<ReadyParams>;
  /** Resolves once the process has exited (never rejects). */
  readonly exited: Promise<WorkerExit>;
  /**
   * One batch. Only in state `ready`. Rejects at once with WorkerCrashedError when the process
   * dies, with WorkerTimeoutError after `timeoutMs` (the process is then SIGKILLed).
   */
  detect(params: DetectParams, timeoutMs: number): Promise<DetectResult>;
  health(timeoutMs: number): Promise<WorkerHealthResult>;
  /** `shutdown` request (when ready), then SIGKILL after `graceMs`. Resolves when exited. */
  shutdown(graceMs: number): Promise<WorkerExit>;
  /** SIGKILL now. */
  kill(): void;
}
