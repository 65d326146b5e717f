/** The worker pool as configured: one place that maps Config to WorkerPool options (server, CLI, doctor, tests). */
import type { Logger } from 'pino';
import { WorkerPool } from '../workers/index.js';
import { type Config, SERVICE_DIR } from './config.js';

export function createPool(config: Config, logger: Logger): WorkerPool {
  return new WorkerPool({
    python: config.python,
    serviceDir: SERVICE_DIR,
    model: config.model,
    device: config.device,
    threads: config.threads,
    workers: config.workers,
    modelsDir: config.modelsDir,
    startupTimeoutMs: config.startupTimeoutMs,
    batchTimeoutMs: config.batchTimeoutMs,
    minReady: config.minReady,
    // Admission bounds the videos; each has at most workers + 1 batches waiting for a worker.
    maxQueuedBatches: (config.maxActiveVideos + config.maxQueuedVideos) * (config.workers + 1),
    backoff: { initialMs: config.backoffInitialMs, maxMs: config.backoffMaxMs },
    env: config.workerEnv,
    logger,
  });
}
