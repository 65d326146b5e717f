/**
 * The supervisor owns N worker slots: it spawns a worker per slot, restarts it with capped
 * exponential backoff when it fails (its own timers: nothing here loops), and keeps each slot's
 * state, restarts, last error and crash window. Checkout is not its job: the pool (generic-pool)
 * lends a slot's worker once the supervisor reports it ready.
 *
 * A slot's state (shown in /health; `busy` is a ready slot whose worker has a batch):
 *   stopped    not started yet, or the pool has closed
 *   starting   a process is starting
 *   ready      its worker serves
 *   backoff    no process; a restart is scheduled
 *   failed     a crash loop (crashLoop.crashes within crashLoop.windowMs) and not ready since;
 *              restarts continue with backoff, and the first ready clears it
 *   stopping   the pool is closing and the process has not exited yet (shown too for a ready
 *              slot whose worker is being killed, e.g. after a batch timeout, until it exits)
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { ReadyParams } from '../protocol/index.js';
import { Backoff, type BackoffOptions } from './backoff.js';
import { type CrashLoopOptions, CrashWindow } from './crash-window.js';
import type { PoseWorker, WorkerExit } from './pose-worker.js';
import { sanitize, WorkerError, WorkerExitedError, type WorkerLastError } from './worker-errors.js';

/** What /health shows for a slot: its state, or `busy` for a ready worker that has a batch. */
export const SLOT_HEALTH_STATES = ['stopped', 'starting', 'ready', 'busy', 'backoff', 'failed', 'stopping'] as const;
export type SlotHealthState = (typeof SLOT_HEALTH_STATES)[number];
export type SlotState = Exclude<SlotHealthState, 'busy'>;

export interface SlotView {
  id: string;
  state: SlotHealthState;
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
  readonly id: string;
  /** Changed only by Supervisor.setState. */
  state: SlotState;
  worker: PoseWorker | null;
  restarts: number;
  /**
   * Starts that failed before ready since the slot was last ready (counted when the start's
   * failure is reported, which precedes its exit): while > 0, no worker is coming soon.
   */
  failedStarts: number;
  lastError: WorkerLastError | null;
  readyAt: number | null;
  backoff: Backoff;
  crashes: CrashWindow;
  restartTimer: NodeJS.Timeout | undefined;
  nextRestartMs: number | null;
  stableTimer: NodeJS.Timeout | undefined;
}

type Phase = 'idle' | 'running' | 'closing' | 'closed';

export class Supervisor extends EventEmitter {
  private readonly slots: Slot[];
  private readonly log: Logger;
  private readonly now: () => number;
  /** Startup causes already logged at error level (logged again at debug while they repeat). */
  private readonly loggedCauses = new Set<string>();
  private phase: Phase = 'idle';
  private lastInfo: ReadyParams | null = null;

  constructor(private readonly opts: SupervisorOptions) {
    super();
    if (!Number.isInteger(opts.workers) || opts.workers < 1) throw new RangeError('workers must be an integer >= 1');
    this.log = opts.logger;
    this.now = opts.now ?? Date.now;
    this.slots = Array.from({ length: opts.workers }, (_, i) => ({
      id: `w${i}`,
      state: 'stopped',
      worker: null,
      restarts: 0,
      failedStarts: 0,
      lastError: null,
      readyAt: null,
      backoff: new Backoff(opts.backoff),
      crashes: new CrashWindow(opts.crashLoop, this.now),
      restartTimer: undefined,
      nextRestartMs: null,
      stableTimer: undefined,
    }));
  }

  get desired(): number {
    return this.slots.length;
  }

  get slotIds(): string[] {
    return this.slots.map((s) => s.id);
  }

  /** Workers alive and ready (idle or with a batch). */
  get readyCount(): number {
    return this.slots.filter(serving).length;
  }

  /** The worker of slot `id` when it is ready and idle, else null. */
  idleWorker(id: string): PoseWorker | null {
    const slot = this.slots.find((s) => s.id === id);
    return slot?.state === 'ready' && slot.worker?.state === 'ready' ? slot.worker : null;
  }

  /** True when no worker serves and every slot is failing to start (or crash-looping): none is coming soon. */
  unavailable(): boolean {
    if (this.phase !== 'running') return false;
    return this.slots.every((s) => s.state === 'failed' || (!serving(s) && s.failedStarts > 0));
  }

  /** The last errors of the slots that are not serving (the cause of a 503). */
  lastErrors(): WorkerLastError[] {
    return this.slots.flatMap((s) => (!serving(s) && s.lastError ? [s.lastError] : []));
  }

  /** The ready message of a serving worker, else the last one seen. */
  modelInfo(): ReadyParams | null {
    for (const s of this.slots) if (serving(s) && s.worker?.info) return s.worker.info;
    return this.lastInfo;
  }

  view(): SlotView[] {
    return this.slots.map((s) => ({
      id: s.id,
      state: healthState(s),
      pid: s.worker?.pid ?? null,
      restarts: s.restarts,
      lastError: s.lastError,
      info: serving(s) ? (s.worker?.info ?? null) : null,
      nextRestartMs: s.restartTimer ? s.nextRestartMs : null,
    }));
  }

  /** Spawns every slot's worker; returns at once. */
  start(): void {
    if (this.phase !== 'idle') return;
    this.phase = 'running';
    for (const slot of this.slots) this.spawn(slot);
  }

  /** Stops restarts (the first step of closing). */
  stopRestarts(): void {
    if (this.phase === 'closing' || this.phase === 'closed') return;
    this.phase = 'closing';
    for (const slot of this.slots) {
      clearTimeout(slot.restartTimer);
      clearTimeout(slot.stableTimer);
      slot.restartTimer = undefined;
      this.setState(slot, slot.worker && slot.worker.state !== 'exited' ? 'stopping' : 'stopped');
    }
  }

  /** Asks every worker to shut down; SIGKILL after `graceMs`. Resolves when all have exited. */
  async close(graceMs: number): Promise<void> {
    this.stopRestarts();
    await Promise.all(
      this.slots.map(async (slot) => {
        if (slot.worker) await slot.worker.shutdown(graceMs);
      }),
    );
    this.phase = 'closed';
    for (const slot of this.slots) this.setState(slot, 'stopped');
  }

  /** The one place a slot's state changes; every change is an event for whoever waits on it. */
  private setState(slot: Slot, state: SlotState): void {
    slot.state = state;
    this.emit('change');
  }

  private spawn(slot: Slot): void {
    slot.restartTimer = undefined;
    slot.nextRestartMs = null;
    if (this.phase !== 'running') return;
    if (slot.state !== 'stopped') slot.restarts++;
    let worker: PoseWorker;
    try {
      worker = this.opts.spawnWorker(slot.id);
    } catch (err) {
      this.log.error({ workerId: slot.id, err }, 'spawning a worker threw');
      slot.worker = null;
      slot.failedStarts++;
      const delay = this.recordFailure(slot, err, { exitCode: null, signal: null, stderrTail: [], requested: false });
      this.checkCrashLoop(slot);
      this.scheduleRestart(slot, delay);
      return;
    }
    slot.worker = worker;
    slot.readyAt = null;
    worker.ready.then(
      (info) => this.onReady(slot, worker, info),
      (err: unknown) => this.onStartupFailed(slot, worker, err),
    );
    void worker.exited.then((exit) => this.onExited(slot, worker, exit));
    // A crash-looping slot stays `failed` while it tries again.
    this.setState(slot, slot.state === 'failed' ? 'failed' : 'starting');
  }

  private onReady(slot: Slot, worker: PoseWorker, info: ReadyParams): void {
    if (slot.worker !== worker || this.phase !== 'running' || worker.state !== 'ready') return;
    slot.readyAt = this.now();
    slot.lastError = null;
    slot.failedStarts = 0;
    this.lastInfo = info;
    this.loggedCauses.clear();
    clearTimeout(slot.stableTimer);
    slot.stableTimer = setTimeout(() => {
      if (slot.worker === worker && serving(slot)) slot.backoff.reset();
    }, slot.backoff.resetAfterMs);
    slot.stableTimer.unref?.();
    this.log.info(
      {
        workerId: slot.id,
        workerPid: worker.pid,
        model: info.model.name,
        device: info.device,
        loadMs: info.loadMs,
        restarts: slot.restarts,
      },
      'worker ready',
    );
    this.setState(slot, 'ready');
    this.emit('worker-ready', this.viewOf(slot));
  }

  private onStartupFailed(slot: Slot, worker: PoseWorker, err: unknown): void {
    if (slot.worker !== worker || this.phase !== 'running') return;
    // Shown at once (the exit, with its code, follows and completes the record).
    slot.lastError = toLastError(err, this.now());
    slot.failedStarts++;
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
    if (slot.worker !== worker) return;
    clearTimeout(slot.stableTimer);
    const fields = { workerId: slot.id, workerPid: worker.pid, exitCode: exit.exitCode, signal: exit.signal };
    const event: WorkerExitEvent = {
      workerId: slot.id,
      pid: worker.pid ?? null,
      exitCode: exit.exitCode,
      signal: exit.signal,
      requested: exit.requested,
      error: null,
    };
    if (this.phase !== 'running') {
      this.log.debug(fields, 'worker exited (pool closing)');
      this.emit('worker-exit', event);
      this.setState(slot, 'stopped');
      return;
    }
    slot.worker = null;
    if (exit.requested && !exit.error) {
      // The server asked it to stop outside of closing: replace it at once, not a failure.
      this.log.info(fields, 'worker stopped on request; replacing it');
      this.emit('worker-exit', event);
      this.scheduleRestart(slot, 0);
      return;
    }
    const wasReady = slot.readyAt !== null;
    const delay = this.recordFailure(slot, exit.error, exit);
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
  private recordFailure(slot: Slot, err: unknown, exit: WorkerExit): number {
    const previous = slot.lastError;
    const record = err ? toLastError(err, this.now()) : (previous ?? toLastError(new WorkerExitedError(exit, ''), this.now()));
    // Keep the structured startup failure's type/message; add what only the exit tells.
    if (record.exitCode === undefined) record.exitCode = exit.exitCode;
    if (record.signal === undefined) record.signal = exit.signal;
    slot.lastError = record;
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
    if (slot.state === 'failed' || !slot.crashes.looping) return;
    this.setState(slot, 'failed');
    this.log.error(
      { workerId: slot.id, crashes: slot.crashes.count, windowMs: slot.crashes.windowMs, summary: slot.lastError?.summary },
      'worker is crash-looping; marked failed (restarts continue with backoff)',
    );
    this.emit('worker-failed', this.viewOf(slot));
  }

  private scheduleRestart(slot: Slot, delayMs: number): void {
    if (this.phase !== 'running') return;
    clearTimeout(slot.restartTimer);
    slot.nextRestartMs = delayMs;
    const repeated = slot.lastError !== null && this.loggedCauses.has(slot.lastError.summary) && slot.restarts > 0;
    this.log[repeated ? 'debug' : 'info'](
      { workerId: slot.id, delayMs, attempt: slot.backoff.attempts, restarts: slot.restarts },
      'worker restart scheduled',
    );
    slot.restartTimer = setTimeout(() => this.spawn(slot), delayMs);
    this.setState(slot, slot.state === 'failed' ? 'failed' : 'backoff');
  }

  private viewOf(slot: Slot): SlotView {
    return this.view()[this.slots.indexOf(slot)];
  }
}

function healthState(slot: Slot): SlotHealthState {
  if (slot.state !== 'ready') return slot.state;
  if (!serving(slot)) return 'stopping';
  return slot.worker?.state === 'busy' ? 'busy' : 'ready';
}

/** Ready, and its process still serving (a worker being killed leaves `ready` only when it exits). */
function serving(slot: Slot): boolean {
  return slot.state === 'ready' && (slot.worker?.state === 'ready' || slot.worker?.state === 'busy');
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
