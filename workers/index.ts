/** The worker pool: public API for the server, scripts and tests. */
export { WorkerPool } from './pool.js';
export type { WorkerPoolOptions } from './pool.js';
export type { PosePool, PoolHealth, PoolStatus, WorkerHealth, PoolModelInfo, PoolDetectResult, PoolEventMap } from './pose-pool.js';
export { SLOT_HEALTH_STATES } from './supervisor.js';
export type { SlotState, SlotHealthState, SlotView, WorkerExitEvent } from './supervisor.js';
export type { WorkerState } from './worker-state.js';
export type { PoseWorker, WorkerExit } from './pose-worker.js';
export { WorkerProcess } from './worker-process.js';
export type { WorkerProcessOptions } from './worker-process.js';
export { Backoff } from './backoff.js';
export type { BackoffOptions } from './backoff.js';
export type { CrashLoopOptions } from './crash-window.js';
export {
  WORKER_ERROR_CODES,
  WorkerError,
  WorkerStartupFailedError,
  StartupTimeoutError,
  WorkerExitedError,
  WorkerCrashedError,
  WorkerTimeoutError,
  WorkerProtocolError,
  WorkerRpcError,
  WorkerNotReadyError,
  PoolError,
  PoolUnavailableError,
  PoolBusyError,
  PoolClosedError,
  CancelledError,
  isWorkerErrorCode,
} from './worker-errors.js';
export type { WorkerErrorCode, WorkerLastError, WorkerExitInfo } from './worker-errors.js';
