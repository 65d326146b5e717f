/**
 * WorkerPool: N warm Python pose workers behind one `detect(batch)`.
 *
 * - The Supervisor (supervisor.ts) keeps the processes: spawn, ready, restart with backoff, crash loop.
 * - generic-pool keeps the checkout queue (min = max = N). Each of its N resources is one slot's
 *   worker: factory.create takes a slot generic-pool does not hold and resolves when that slot's
 *   worker is ready. It waits and never rejects, so generic-pool's create loop cannot spin on a
 *   failing start (generic-pool issues 175/183). Waits for a worker are bounded here, not there,
 *   so nothing of generic-pool's is left running at close.
 * - A batch whose worker dies or times out is retried once on another worker; if that fails too,
 *   every frame comes back with an error (WORKER_CRASHED / WORKER_TIMEOUT), none is lost.
 * - When no worker serves and every slot is failing to start, detect() rejects at once with
 *   PoolUnavailableError carrying the workers' last errors.
 */
import { EventEmitter } from 'node:events';
import genericPool from 'generic-pool';
import type { Logger } from 'pino';
import { type DetectParams, type DetectResult, type FrameErrorCode, PROTOCOL } from '../protocol/index.js';
import type { BackoffOptions } from './backoff.js';
import type { CrashLoopOptions } from './crash-window.js';
import { failedFrameResults, orderFrameResults } from './frame-results.js';
import type { PoolDetectResult, PoolEventMap, PoolHealth, PoolModelInfo, PoolStatus, PosePool } from './pose-pool.js';
import type { PoseWorker } from './pose-worker.js';
import { Supervisor } from './supervisor.js';
import {
  CancelledError,
  PoolBusyError,
  PoolClosedError,
  PoolUnavailableError,
  WorkerCrashedError,
  WorkerError,
  type WorkerLastError,
  WorkerProtocolError,
  WorkerRpcError,
  WorkerTimeoutError,
} from './worker-errors.js';
import { WorkerProcess, type WorkerProcessOptions } from './worker-process.js';

export interface WorkerPoolOptions {
  /** Interpreter the workers run (POSE_PYTHON). */
  python: string;
  /** pose-service/ directory (the workers' cwd). */
  serviceDir: string;
  model: string;
  device: string;
  /** torch threads per worker. */
  threads: number;
  /** N: warm workers kept alive. */
  workers: number;
  /** POSE_MODELS_DIR for the workers. */
  modelsDir?: string;
  /** Spawn to ready, model load included (POSE_STARTUP_TIMEOUT_MS). */
  startupTimeoutMs: number;
  /** One detect call (POSE_BATCH_TIMEOUT_MS). */
  batchTimeoutMs: number;
  /** Ready workers needed for isAvailable() / whenReady() (default 1). */
  minReady?: number;
  /** Batches that may wait for a worker; more get PoolBusyError (default 64). */
  maxQueuedBatches?: number;
  /** Longest wait for a worker (default startupTimeoutMs + batchTimeoutMs). */
  acquireTimeoutMs?: number;
  /** Restart backoff (default 1000 ms doubling to 60000 ms, reset after 30 s ready). */
  backoff?: BackoffOptions;
  /** Crash loop: `crashes` within `windowMs` mark a worker failed (default 3 in 60 s). */
  crashLoop?: CrashLoopOptions;
  /** Extra environment for the workers. */
  env?: Record<string, string>;
  logger: Logger;
  /** Replaces the real process spawner (unit tests pass in-memory test doubles). */
  spawnWorker?: (id: string, options: WorkerProcessOptions) => PoseWorker;
}

interface Waiter {
  fail(err: Error): void;
}

const RETRYABLE_RPC = new Set<number>([PROTOCOL.rpcErrorCodes.SHUTTING_DOWN]);
const BATCH_FAILED_RPC = new Set<number>([PROTOCOL.rpcErrorCodes.BATCH_FAILED, PROTOCOL.rpcErrorCodes.INTERNAL_ERROR]);
/** stderr lines shown per worker in /health (the log has the full tail). */
const HEALTH_STDERR_LINES = 10;

export class WorkerPool extends EventEmitter<PoolEventMap> implements PosePool {
  readonly minReady: number;
  private readonly opts: WorkerPoolOptions;
  private readonly log: Logger;
  private readonly supervisor: Supervisor;
  private readonly pool: genericPool.Pool<PoseWorker>;
  /** Slots whose worker generic-pool holds (idle, lent, or awaited by a create). */
  private readonly held = new Set<string>();
  private readonly maxQueuedBatches: number;
  private readonly acquireTimeoutMs: number;
  private readonly waiters = new Set<Waiter>();
  private readonly running = new Set<Promise<unknown>>();
  private started = false;
  private closing = false;
  private closePromise: Promise<void> | null = null;

  constructor(opts: WorkerPoolOptions) {
    super();
    this.opts = opts;
    this.log = opts.logger;
    this.minReady = Math.max(1, Math.min(opts.minReady ?? 1, opts.workers));
    this.maxQueuedBatches = opts.maxQueuedBatches ?? 64;
    this.acquireTimeoutMs = opts.acquireTimeoutMs ?? opts.startupTimeoutMs + opts.batchTimeoutMs;
    const spawnOne = opts.spawnWorker ?? ((_id: string, o: WorkerProcessOptions) => new WorkerProcess(o));
    this.supervisor = new Supervisor({
      workers: opts.workers,
      backoff: opts.backoff,
      crashLoop: opts.crashLoop,
      logger: opts.logger,
      spawnWorker: (id) =>
        spawnOne(id, {
          id,
          python: opts.python,
          serviceDir: opts.serviceDir,
          model: opts.model,
          device: opts.device,
          threads: opts.threads,
          modelsDir: opts.modelsDir,
          env: opts.env,
          startupTimeoutMs: opts.startupTimeoutMs,
          logger: opts.logger,
        }),
    });
    for (const name of ['worker-ready', 'worker-exit', 'worker-failed'] as const) {
      this.supervisor.on(name, (event) => this.emit(name, event));
    }
    this.supervisor.on('change', () => this.onSupervisorChange());

    // One 'worker-ready' listener per slot awaiting its worker, plus the pool's own.
    this.supervisor.setMaxListeners(opts.workers + 10);

    this.pool = genericPool.createPool<PoseWorker>(
      {
        create: () => this.nextWorkerOfFreeSlot(),
        destroy: async (worker) => {
          this.held.delete(worker.id);
        },
        // A worker that died while idle is not lent: generic-pool destroys it and creates again.
        validate: async (worker) => worker.state === 'ready',
      },
      { min: opts.workers, max: opts.workers, testOnBorrow: true, autostart: false, fifo: true },
    );
    this.pool.on('factoryCreateError', (err) => this.log.error({ err }, 'unexpected pool create error'));
    this.pool.on('factoryDestroyError', (err) => this.log.error({ err }, 'unexpected pool destroy error'));
  }

  /** Spawns the N workers; returns at once. */
  start(): void {
    if (this.started || this.closing) return;
    this.started = true;
    this.supervisor.start();
    this.pool.start();
  }

  get desired(): number {
    return this.supervisor.desired;
  }

  /** Workers alive and ready (idle or with a batch). */
  get readyCount(): number {
    return this.supervisor.readyCount;
  }

  /** At least minReady workers ready (and not closing). */
  isAvailable(): boolean {
    return !this.closing && this.readyCount >= this.minReady;
  }

  /** Resolves true once minReady workers are ready; false after `timeoutMs` or when closing. */
  whenReady(timeoutMs: number): Promise<boolean> {
    if (this.isAvailable()) return Promise.resolve(true);
    if (this.closing) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (value: boolean) => {
        clearTimeout(timer);
        this.supervisor.off('change', check);
        resolve(value);
      };
      const check = () => {
        if (this.isAvailable()) done(true);
        else if (this.closing) done(false);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      this.supervisor.on('change', check);
    });
  }

  health(): PoolHealth {
    const ready = this.readyCount;
    const desired = this.desired;
    let status: PoolStatus;
    if (this.closing) status = 'unavailable';
    else if (ready >= desired) status = 'ready';
    else if (ready > 0) status = 'degraded';
    else if (this.supervisor.unavailable()) status = 'unavailable';
    else status = 'starting';
    return {
      status,
      ready,
      desired,
      workers: this.supervisor.view().map((slot) => ({
        id: slot.id,
        state: slot.state,
        pid: slot.pid,
        model: slot.info?.model.name ?? this.opts.model,
        device: slot.info?.device ?? this.opts.device,
        restarts: slot.restarts,
        lastError: slot.lastError ? forHealth(slot.lastError) : null,
      })),
    };
  }

  /** The model the workers serve, from their ready messages; null before any was ready. */
  model(): PoolModelInfo | null {
    const info = this.supervisor.modelInfo();
    if (!info) return null;
    return {
      name: info.model.name,
      device: info.device,
      keypoints: info.model.keypoints,
      skeleton: info.model.skeleton,
      extras: info.model.extras ?? [],
    };
  }

  /** The last errors of the workers that are not ready (for POSE_SERVICE_UNAVAILABLE). */
  lastErrors(): WorkerLastError[] {
    return this.supervisor.lastErrors().map(forHealth);
  }

  /**
   * Poses one batch. Frames come back in the order sent, one result per frame. A crash or a timeout
   * is retried once on another worker; if the retry fails too, each frame carries the error.
   * Rejects: PoolUnavailableError (no worker ready, all failing), PoolBusyError (queue full, or no
   * worker free in acquireTimeoutMs), CancelledError (signal), PoolClosedError, WorkerRpcError
   * (the worker rejected the request itself, e.g. invalid params).
   */
  async detect(params: DetectParams, opts: { signal?: AbortSignal } = {}): Promise<PoolDetectResult> {
    const { signal } = opts;
    if (!this.started) throw new PoolUnavailableError([], 'the pool was not started (WorkerPool.start())');
    if (this.closing) throw new PoolClosedError();
    if (signal?.aborted) throw new CancelledError(signal.reason);

    let first: WorkerError;
    try {
      const { result, workerId, workerPid } = await this.attempt(params, signal);
      return { ...result, workerId, workerPid, attempts: 1 };
    } catch (err) {
      const batchFailure = asBatchFailure(err, params);
      if (batchFailure) return { ...batchFailure.result, workerId: batchFailure.workerId, attempts: 1 };
      if (!isRetryable(err)) throw err;
      first = err;
    }
    this.log.warn(
      { requestId: params.requestId, frames: params.frames.length, code: first.code, err: first.message },
      'batch failed on its worker; retrying once on another worker',
    );
    if (signal?.aborted) throw new CancelledError(signal.reason);
    if (this.closing) throw new PoolClosedError();
    try {
      const { result, workerId, workerPid } = await this.attempt(params, signal);
      return { ...result, workerId, workerPid, attempts: 2 };
    } catch (err) {
      if (err instanceof CancelledError || err instanceof PoolClosedError) throw err;
      const batchFailure = asBatchFailure(err, params);
      if (batchFailure) return { ...batchFailure.result, workerId: batchFailure.workerId, attempts: 2 };
      if (err instanceof WorkerRpcError && !isRetryable(err)) throw err;
      const cause = isRetryable(err) ? err : first;
      const message = isRetryable(err)
        ? `${cause.message} (retried once: failed on two workers)`
        : `${first.message}; the retry found no worker: ${(err as Error).message}`;
      this.log.error(
        { requestId: params.requestId, frames: params.frames.length, code: cause.code },
        'batch failed twice; frames returned with errors',
      );
      return { ...failedFrameResults(params.frames, frameCodeOf(cause), message), workerId: cause.workerId ?? '', attempts: 2 };
    }
  }

  /** Stops accepting work, lets in-flight batches finish within `graceMs`, shuts the workers down (SIGKILL after the grace). Idempotent. */
  close(opts: { graceMs?: number } = {}): Promise<void> {
    if (!this.closePromise) this.closePromise = this.doClose(opts.graceMs ?? 10_000);
    return this.closePromise;
  }

  private async doClose(graceMs: number): Promise<void> {
    this.closing = true;
    const deadline = Date.now() + graceMs;
    for (const waiter of [...this.waiters]) waiter.fail(new PoolClosedError());
    this.supervisor.stopRestarts();
    if (this.running.size > 0) {
      this.log.info({ batches: this.running.size, graceMs }, 'pool closing: waiting for in-flight batches');
      await settleWithin([...this.running], graceMs);
    }
    await this.supervisor.close(Math.max(500, deadline - Date.now()));
    // generic-pool is dropped, not drained: its creates still waiting for a worker never resolve,
    // and it holds no timers (no eviction; waits are bounded in acquire()).
    this.log.info('pool closed');
  }

  private onSupervisorChange(): void {
    if (this.waiters.size > 0 && this.supervisor.unavailable()) {
      const errors = this.lastErrors();
      for (const waiter of [...this.waiters]) waiter.fail(new PoolUnavailableError(errors));
    }
  }

  /** acquire → detect → release (or destroy when the worker died). */
  private async attempt(
    params: DetectParams,
    signal?: AbortSignal,
  ): Promise<{ result: DetectResult; workerId: string; workerPid: number | undefined }> {
    const worker = await this.acquire(signal);
    const log = this.log.child({ workerId: worker.id, workerPid: worker.pid });
    log.debug({ requestId: params.requestId, frames: params.frames.length }, 'batch sent');
    const run = worker.detect(params, this.opts.batchTimeoutMs).then(
      (result) => {
        void this.pool.release(worker);
        return { result: orderFrameResults(params.frames, result), workerId: worker.id, workerPid: worker.pid };
      },
      (err: unknown) => {
        // A worker that answered with an RPC error is alive and ready; any other failure ends it.
        if (err instanceof WorkerRpcError && worker.state === 'ready') void this.pool.release(worker);
        else void this.pool.destroy(worker);
        if (err instanceof WorkerError) err.workerId = worker.id;
        throw err;
      },
    );
    this.running.add(run);
    const untrack = () => this.running.delete(run);
    run.then(untrack, untrack);
    if (!signal) return run;
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        // The worker finishes the batch; its result is dropped and the worker released then.
        log.debug({ requestId: params.requestId }, 'batch cancelled by its caller; result will be dropped');
        reject(new CancelledError(signal.reason));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      run.then(
        (value) => {
          signal.removeEventListener('abort', onAbort);
          resolve(value);
        },
        (err) => {
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      );
    });
  }

  /**
   * generic-pool's create: the worker of a slot it does not hold, once ready. Waits for it and
   * never rejects (a rejected create is retried by generic-pool at once: the spin of issues 175/183).
   * generic-pool never asks for more than N, and destroy() frees the slot before the next create.
   */
  private nextWorkerOfFreeSlot(): Promise<PoseWorker> {
    const id = this.supervisor.slotIds.find((slotId) => !this.held.has(slotId));
    if (id === undefined) throw new Error('generic-pool asked for more workers than there are slots');
    this.held.add(id);
    return new Promise((resolve) => {
      const lendWhenReady = () => {
        const worker = this.supervisor.idleWorker(id);
        if (!worker) return false;
        this.supervisor.off('worker-ready', onReady);
        resolve(worker);
        return true;
      };
      const onReady = (view: { id: string }) => {
        if (view.id === id) lendWhenReady();
      };
      if (!lendWhenReady()) this.supervisor.on('worker-ready', onReady);
    });
  }

  /** A ready worker from generic-pool; fails fast when none can come, when too many wait, on abort, after acquireTimeoutMs, and at close. */
  private acquire(signal?: AbortSignal): Promise<PoseWorker> {
    if (this.closing) return Promise.reject(new PoolClosedError());
    if (signal?.aborted) return Promise.reject(new CancelledError(signal.reason));
    if (this.supervisor.unavailable()) return Promise.reject(new PoolUnavailableError(this.lastErrors()));
    if (this.waiters.size >= this.maxQueuedBatches) {
      return Promise.reject(new PoolBusyError('queue-full', `too many batches waiting for a worker (max ${this.maxQueuedBatches})`));
    }
    return new Promise<PoseWorker>((resolve, reject) => {
      let settled = false;
      const waiter: Waiter = {
        fail: (err) => {
          if (settled) return;
          settled = true;
          cleanup();
          reject(err);
        },
      };
      const onAbort = () => waiter.fail(new CancelledError(signal?.reason));
      const timer = setTimeout(() => waiter.fail(this.waitedTooLong()), this.acquireTimeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
        signal?.removeEventListener('abort', onAbort);
      };
      this.waiters.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
      // generic-pool's acquire cannot reject here: no queue limit, timeout or drain is set on it.
      this.pool.acquire().then(
        (worker) => {
          if (settled) {
            // Nobody wants it any more (cancelled, failed fast, timed out, closing): straight back.
            void this.pool.release(worker);
            return;
          }
          settled = true;
          cleanup();
          resolve(worker);
        },
        (err: unknown) => waiter.fail(err instanceof Error ? err : new Error(String(err))),
      );
    });
  }

  private waitedTooLong(): Error {
    const waited = this.acquireTimeoutMs;
    if (this.readyCount === 0) return new PoolUnavailableError(this.lastErrors(), `no worker became ready within ${waited} ms`);
    return new PoolBusyError('wait-timeout', `no worker became free within ${waited} ms`);
  }
}

function isRetryable(err: unknown): err is WorkerError {
  return (
    err instanceof WorkerCrashedError ||
    err instanceof WorkerTimeoutError ||
    err instanceof WorkerProtocolError ||
    (err instanceof WorkerRpcError && RETRYABLE_RPC.has(err.rpcCode))
  );
}

/** A JSON-RPC error that failed the whole batch inside a live worker: every frame gets INFERENCE_FAILED. */
function asBatchFailure(err: unknown, params: DetectParams): { result: DetectResult; workerId: string } | null {
  if (!(err instanceof WorkerRpcError) || !BATCH_FAILED_RPC.has(err.rpcCode)) return null;
  const workerId = err.workerId ?? '';
  return { result: failedFrameResults(params.frames, 'INFERENCE_FAILED', err.message), workerId };
}

function frameCodeOf(err: WorkerError): FrameErrorCode {
  return err instanceof WorkerTimeoutError ? 'WORKER_TIMEOUT' : 'WORKER_CRASHED';
}

function forHealth(lastError: WorkerLastError): WorkerLastError {
  if (!lastError.stderrTail || lastError.stderrTail.length <= HEALTH_STDERR_LINES) return lastError;
  return { ...lastError, stderrTail: lastError.stderrTail.slice(-HEALTH_STDERR_LINES) };
}

async function settleWithin(promises: Promise<unknown>[], ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.allSettled(promises),
    new Promise((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
}
