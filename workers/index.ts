/** The worker pool: public API for the server, scripts and tests. */

export type { BackoffOptions } from './backoff.js';
export { Backoff } from './backoff.js';
export type { CrashLoopOptions } from './crash-window.js';
export type { WorkerPoolOptions } from './pool.js';
export { WorkerPool } from './pool.js';
export type { PoolDetectResult, PoolEventMap, PoolHealth, PoolModelInfo, PoolStatus, PosePool, WorkerHealth } from './pose-pool.js';
export type { PoseWorker, WorkerExit } from './pose-worker.js';
export type { SlotHealthState, SlotState, SlotView, WorkerExitEvent } from './supervisor.js';
export { SLOT_HEALTH_STATES } from './supervisor.js';
export type { WorkerErrorCode, WorkerExitInfo, WorkerLastError } from './worker-errors.js';
export {
  CancelledError,
  isWorkerErrorCode,
  PoolBusyError,
  PoolClosedError,
  PoolError,
  PoolUnavailableError,
  StartupTimeoutError,
  WORKER_ERROR_CODES,
  WorkerCrashedError,
  WorkerError,
  WorkerExitedError,
  WorkerNotReadyError,
  WorkerProtocolError,
  WorkerRpcError,
  WorkerStartupFailedError,
  WorkerTimeoutError,
} from './worker-errors.js';
export type { WorkerProcessOptions } from './worker-process.js';
export { WorkerProcess } from './worker-process.js';
export type { WorkerState } from './worker-state.js';
