/**
 * The worker pool as everyone outside workers/ sees it: the server, the CLI, the doctor and the
 * benchmark. WorkerPool implements it; tests may pass a double.
 */
import type { DetectParams, DetectResult } from '../protocol/index.js';
import type { SlotHealthState, SlotView, WorkerExitEvent } from './supervisor.js';
import type { WorkerLastError } from './worker-errors.js';

export type PoolStatus = 'ready' | 'starting' | 'degraded' | 'unavailable';

export interface WorkerHealth {
  id: string;
  state: SlotHealthState;
  pid: number | null;
  model: string;
  device: string;
  restarts: number;
  lastError: WorkerLastError | null;
}

/** The `/health` body (CONTRACT.md). */
export interface PoolHealth {
  status: PoolStatus;
  ready: number;
  desired: number;
  workers: WorkerHealth[];
}

/** The model the workers serve, from their ready message. */
export interface PoolModelInfo {
  name: string;
  device: string;
  keypoints: string[];
  skeleton: [number, number][];
  extras: string[];
}

/** A batch's results, the slot (and process, when one answered) that posed it, and the tries it took. */
export type PoolDetectResult = DetectResult & { workerId: string; workerPid?: number; attempts: number };

/** The pool's events and their arguments. */
export interface PoolEventMap {
  'worker-ready': [SlotView];
  'worker-exit': [WorkerExitEvent];
  'worker-failed': [SlotView];
}

export interface PosePool {
  /** N: the workers the pool keeps. */
  readonly desired: number;
  /**
   * Poses one batch: one result per frame, in the order sent. Rejects with a PoolError
   * (unavailable, busy, closed, cancelled) or a WorkerRpcError (the worker refused the request).
   */
  detect(params: DetectParams, opts?: { signal?: AbortSignal }): Promise<PoolDetectResult>;
  /** The model served; null before any worker was ready. */
  model(): PoolModelInfo | null;
  health(): PoolHealth;
  /** Enough workers ready to take work. */
  isAvailable(): boolean;
  /** The last errors of the workers that are not ready (the cause of a 503). */
  lastErrors(): WorkerLastError[];
  on<E extends keyof PoolEventMap>(event: E, listener: (...args: PoolEventMap[E]) => void): unknown;
  off<E extends keyof PoolEventMap>(event: E, listener: (...args: PoolEventMap[E]) => void): unknown;
}
