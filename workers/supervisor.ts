/**
 * The supervisor owns N worker slots: it spawns a worker per slot, restarts it with capped
 * exponential backoff when it fails (its own timers: nothing here loops), keeps each slot's
 * restarts, last error and crash window, and offers ready workers to the pool (`takeReady`).
 *
 * A slot's state for /health:
 *   starting | ready | busy   the worker's own state
 *   backoff                   no process; a restart is scheduled
 *   failed                    a crash loop (crashLoop.crashes within crashLoop.windowMs) and not
 *                             ready; restarts continue with backoff, and the first ready clears it
 *   stopping | stopped        the pool is closing / closed
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { ReadyParams } from '../protocol/index.js';
import { Backoff, type BackoffOptions } from './backoff.js';
import { CrashWindow, type CrashLoopOptions } from './crash-window.js';
import type { PoseWorker, WorkerExit } from './pose-worker.js';
import { WorkerError, WorkerExitedError, sanitize, type WorkerLastError } from './worker-errors.js';

export type SlotState = 'starting' | 'ready' | 'busy' | 'backoff' | 'failed' | 'stopping' | 'stopped';

export interface SlotView {
  id: string;
  state: SlotState;
  pid: number | null;
  restarts: number;
  lastError: WorkerLastError | null;
  /** The worker's ready message while it serves. */
  info: ReadyParams | null;
  /** The delay of the restart now scheduled, if any. */
  nextRestartMs: number | null;
}

export interface SupervisorOptions {
  workers: number;
  /** Spawns the worker of a slot (a WorkerProcess, or a test double). */
  spawnWorker: (slotId: string) => PoseWorker;
  backoff?: BackoffOptions;
  crashLoop?: CrashLoopOptions;
  logger: Logger;
  /** Clock, for tests. */
  now?: () => number;
}

/** Events: 'worker-ready' (SlotView), 'worker-exit' (WorkerExitEvent), 'worker-failed' (SlotView), 'change' (). */
export interface WorkerExitEvent {
  workerId: string;
  pid: number | null;
  exitCode: number | null;
  signal: string | null;
  requested: boolean;
  error: WorkerLastError | null;
}

interface Slot {
  id: string;
  worker: PoseWorker | null;
  restarts: number;
  spawned: number;
  lastError: WorkerLastError | null;
  /** The last attempt ended before ready (a startup failure): no worker soon. */
  failingStartup: boolean;
  /** Crash loop seen and not ready since. */
  failed: boolean;
  backoff: Backoff;
  crashes: CrashWindow;
  restartTimer: NodeJS.Timeout | undefined;
  nextRestartMs: number | null;
  stableTimer: NodeJS.Timeout | undefined;
  readyAt: number | null;
  /** Handed to the pool and not given back. */
  offered: boolean;
}

export class Supervisor extends EventEmitter {
  private readonly slots: Slot[];
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly readyQueue: PoseWorker[] = [];
  private readonly takers: Array<(worker: PoseWorker | null) => void> = [];
  /** Startup causes already logged at error level (logged again at debug while they repeat). */
  private readonly loggedCauses = new Set<string>();
  private started = false;
  private closing = false;
  private closed = false;
  private lastInfo: ReadyParams | null = null;

  constructor(private readonly opts: SupervisorOptions) {
    super();
    if (!Number.isInteger(opts.workers) || opts.workers < 1) throw new RangeError('workers must be an integer >= 1');
    this.log = opts.logger;
    this.now = opts.now ?? Date.now;
    this.slots = Array.from({ length: opts.workers }, (_, i) => ({
      id: `w${i}`,
      worker: null,
      restarts: 0,
      spawned: 0,
      lastError: null,
      failingStartup: false,
      failed: false,
      backoff: new Backoff(opts.backoff),
      crashes: new CrashWindow(opts.crashLoop, this.now),
      restartTimer: undefined,
      nextRestartMs: null,
      stableTimer: undefined,
      readyAt: null,
      offered: false,
    }));
  }

  get desired(): number {
    return this.slots.length;
  }

  /** Workers alive and ready (idle or with a batch). */
  get readyCount(): number {
    return this.slots.filter((s) => isServing(s.worker)).length;
  }

  /** True when no worker serves and every slot is failing to start (or crash-looping): none is coming soon. */
  unavailable(): boolean {
    if (!this.started || this.closing) return false;
    return this.slots.every((s) => !isServing(s.worker) && (s.failingStartup || s.failed));
  }

  /** The last errors of the slots that are not serving (the cause of a 503). */
  lastErrors(): WorkerLastError[] {
    return this.slots.filter((s) => !isServing(s.worker) && s.lastError).map((s) => s.lastError as WorkerLastError);
  }

  /** The ready message of a serving worker, else the last one seen. */
  modelInfo(): ReadyParams | null {
    for (const s of this.slots) if (isServing(s.worker) && s.worker?.info) return s.worker.info;
    return this.lastInfo;
  }

  view(): SlotView[] {
    return this.slots.map((s) => ({
      id: s.id,
      state: this.stateOf(s),
      pid: s.worker?.pid ?? null,
      restarts: s.restarts,
      lastError: s.lastError,
      info: isServing(s.worker) ? (s.worker?.info ?? null) : null,
      nextRestartMs: s.restartTimer ? s.nextRestartMs : null,
    }));
  }

  /** Spawns every slot's worker; returns at once. */
  start(): void {
    if (this.started || this.closing) return;
    this.started = true;
    for (const slot of this.slots) this.spawn(slot);
  }

  /**
   * The next ready worker not yet handed out: resolves when there is one (it waits, it does not
   * fail), or with null once the supervisor is closing.
   */
  takeReady(): Promise<PoseWorker | null> {
    if (this.closing) return Promise.resolve(null);
    while (this.readyQueue.length > 0) {
      const worker = this.readyQueue.shift() as PoseWorker;
      const slot = this.slotOf(worker);
      if (slot && worker.state === 'ready') {
        slot.offered = true;
        return Promise.resolve(worker);
      }
    }
    return new Promise((resolve) => this.takers.push(resolve));
  }

  /**
   * The pool let go of `worker` (generic-pool destroyed it). A live, ready one is offered again;
   * a dead one's slot is already being restarted.
   */
  giveBack(worker: PoseWorker): void {
    const slot = this.slotOf(worker);
    if (!slot) return;
    slot.offered = false;
    if (!this.closing && worker.state === 'ready') this.offer(slot, worker);
  }

  /** Stops restarts and hands `null` to everyone waiting in takeReady (first step of closing). */
  stopRestarts(): void {
    if (this.closing) return;
    this.closing = true;
    for (const slot of this.slots) {
      clearTimeout(slot.restartTimer);
      clearTimeout(slot.stableTimer);
      slot.restartTimer = undefined;
    }
    for (const take of this.takers.splice(0)) take(null);
    this.readyQueue.length = 0;
    this.emit('change');
  }

  /** Asks every worker to shut down; SIGKILL after `graceMs`. Resolves when all have exited. */
  async close(graceMs: number): Promise<void> {
    this.stopRestarts();
    await Promise.all(
      this.slots.map(async (slot) => {
        if (slot.worker) await slot.worker.shutdown(graceMs);
      }),
    );
    this.closed = true;
    this.emit('change');
  }

  private stateOf(slot: Slot): SlotState {
    const w = slot.worker;
    if (w && (w.state === 'ready' || w.state === 'busy')) return this.closing ? 'stopping' : w.state;
    if (this.closed) return 'stopped';
    if (this.closing) return w && w.state !== 'exited' ? 'stopping' : 'stopped';
    if (slot.failed) return 'failed';
    if (w && w.state === 'starting') return 'starting';
    if (slot.restartTimer || (w && w.state !== 'exited')) return 'backoff';
    return this.started ? 'backoff' : 'stopped';
  }

  private slotOf(worker: PoseWorker): Slot | undefined {
    return this.slots.find((s) => s.worker === worker);
  }

  private spawn(slot: Slot): void {
    slot.restartTimer = undefined;
    slot.nextRestartMs = null;
    if (this.closing) return;
    if (slot.spawned > 0) slot.restarts++;
    slot.spawned++;
    let worker: PoseWorker;
    try {
      worker = this.opts.spawnWorker(slot.id);
    } catch (err) {
      this.log.error({ workerId: slot.id, err }, 'spawning a worker threw');
      slot.worker = null;
      const delay = this.recordFailure(slot, err, { exitCode: null, signal: null, stderrTail: [], requested: false }, true);
      this.checkCrashLoop(slot);
      this.scheduleRestart(slot, delay);
      return;
    }
    slot.worker = worker;
    slot.offered = false;
    slot.readyAt = null;
    worker.ready.then(
      (info) => this.onReady(slot, worker, info),
      (err: unknown) => this.onStartupFailed(slot, worker, err),
    );
    void worker.exited.then((exit) => this.onExited(slot, worker, exit));
    this.emit('change');
  }

  private onReady(slot: Slot, worker: PoseWorker, info: ReadyParams): void {
    if (slot.worker !== worker || this.closing || worker.state !== 'ready') return;
    slot.readyAt = this.now();
    slot.lastError = null;
    slot.failingStartup = false;
    slot.failed = false;
    this.lastInfo = info;
    this.loggedCauses.clear();
    clearTimeout(slot.stableTimer);
    const stableMs = slot.backoff.resetAfterMs;
    slot.stableTimer = setTimeout(() => {
      if (slot.worker === worker && isServing(worker)) slot.backoff.reset();
    }, stableMs);
    slot.stableTimer.unref?.();
    this.log.info(
      { workerId: slot.id, workerPid: worker.pid, model: info.model.name, device: info.device, loadMs: info.loadMs, restarts: slot.restarts },
      'worker ready',
    );
    this.offer(slot, worker);
    this.emit('worker-ready', this.view().find((v) => v.id === slot.id));
    this.emit('change');
  }

  private onStartupFailed(slot: Slot, worker: PoseWorker, err: unknown): void {
    if (slot.worker !== worker || this.closing) return;
    // Shown at once (the exit, with its code, follows and completes the record).
    slot.lastError = toLastError(err, this.now());
    slot.failingStartup = true;
    const cause = slot.lastError.summary;
    const fields = { workerId: slot.id, workerPid: worker.pid, summary: cause, hint: slot.lastError.hint, code: slot.lastError.code };
    if (this.loggedCauses.has(cause)) {
      this.log.debug(fields, 'worker startup failed (same cause)');
    } else {
      this.loggedCauses.add(cause);
      this.log.error(fields, `worker startup failed: ${cause}. Fix: ${slot.lastError.hint}`);
    }
    this.emit('change');
  }

  private onExited(slot: Slot, worker: PoseWorker, exit: WorkerExit): void {
    const i = this.readyQueue.indexOf(worker);
    if (i >= 0) this.readyQueue.splice(i, 1);
    if (slot.worker !== worker) return;
    clearTimeout(slot.stableTimer);
    const fields = { workerId: slot.id, workerPid: worker.pid, exitCode: exit.exitCode, signal: exit.signal };
    const event: WorkerExitEvent = { workerId: slot.id, pid: worker.pid ?? null, exitCode: exit.exitCode, signal: exit.signal, requested: exit.requested, error: null };
    if (this.closing) {
      this.log.debug(fields, 'worker exited (pool closing)');
      this.emit('worker-exit', event);
      this.emit('change');
      return;
    }
    slot.worker = null;
    const wasReady = slot.readyAt !== null;
    if (exit.requested && !exit.error) {
      // The server asked it to stop outside of closing: replace it at once, not a failure.
      this.log.info(fields, 'worker stopped on request; replacing it');
      this.emit('worker-exit', event);
      this.scheduleRestart(slot, 0);
      return;
    }
    const delay = this.recordFailure(slot, exit.error, exit, !wasReady);
    event.error = slot.lastError;
    if (wasReady) {
      this.log.error(
        { ...fields, stderrTail: exit.stderrTail, err: slot.lastError?.message },
        `worker crashed (${slot.lastError?.message ?? 'exited'})`,
      );
    }
    this.emit('worker-exit', event);
    this.checkCrashLoop(slot);
    this.scheduleRestart(slot, delay);
  }

  /** Records a failure of `slot` (startup or crash); returns the delay before its restart. */
  private recordFailure(slot: Slot, err: unknown, exit: WorkerExit, beforeReady: boolean): number {
    const previous = slot.lastError;
    const record = err ? toLastError(err, this.now()) : previous ?? toLastError(new WorkerExitedError(exit, ''), this.now());
    // Keep the structured startup failure's type/message; add what only the exit tells.
    if (record.exitCode === undefined) record.exitCode = exit.exitCode;
    if (record.signal === undefined) record.signal = exit.signal;
    slot.lastError = record;
    slot.failingStartup = beforeReady;
    slot.crashes.record();
    const stable = slot.readyAt !== null && this.now() - slot.readyAt >= slot.backoff.resetAfterMs;
    slot.readyAt = null;
    if (stable) {
      // A worker that served stably is replaced at once; failures in quick succession back off.
      slot.backoff.reset();
      return 0;
    }
    return slot.backoff.next();
  }

  /** Crash loop: `crashes` failures within the window mark the slot failed until it is ready again. */
  private checkCrashLoop(slot: Slot): void {
    if (slot.failed || !slot.crashes.looping) return;
    slot.failed = true;
    this.log.error(
      { workerId: slot.id, crashes: slot.crashes.count, windowMs: slot.crashes.windowMs, summary: slot.lastError?.summary },
      'worker is crash-looping; marked failed (restarts continue with backoff)',
    );
    this.emit('worker-failed', this.view().find((v) => v.id === slot.id));
  }

  private scheduleRestart(slot: Slot, delayMs: number): void {
    if (this.closing) return;
    clearTimeout(slot.restartTimer);
    slot.nextRestartMs = delayMs;
    const repeated = slot.lastError !== null && this.loggedCauses.has(slot.lastError.summary) && slot.restarts > 0;
    this.log[repeated ? 'debug' : 'info'](
      { workerId: slot.id, delayMs, attempt: slot.backoff.attempts, restarts: slot.restarts },
      'worker restart scheduled',
    );
    slot.restartTimer = setTimeout(() => this.spawn(slot), delayMs);
    this.emit('change');
  }

  private offer(slot: Slot, worker: PoseWorker): void {
    if (slot.offered || this.readyQueue.includes(worker)) return;
    const take = this.takers.shift();
    if (take) {
      slot.offered = true;
      take(worker);
    } else {
      this.readyQueue.push(worker);
    }
  }
}

function isServing(worker: PoseWorker | null): boolean {
  return worker !== null && (worker.state === 'ready' || worker.state === 'busy');
}

function toLastError(err: unknown, now: number): WorkerLastError {
  const at = new Date(now);
  if (err instanceof WorkerError) return err.toLastError(at);
  const message = sanitize(err instanceof Error ? err.message : String(err));
  return {
    code: 'WORKER_EXITED',
    type: err instanceof Error ? err.name : 'Error',
    message,
    hint: 'run `npm run doctor` to check the pose-service environment',
    summary: message,
    at: at.toISOString(),
  };
}
