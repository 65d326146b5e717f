/**
 * One Python worker process and its JSON-RPC connection over stdio (Content-Length framing).
 *
 * The process's life is its state (worker-state.ts). The server writes no request before
 * `worker/ready`. Every failure is reported by its cause: a structured startup failure, the exit
 * code or signal with the stderr tail, a timeout; never by the broken pipe that follows a death.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import type { Logger } from 'pino';
import {
  createMessageConnection,
  type MessageConnection,
  ResponseError,
  StreamMessageReader,
  StreamMessageWriter,
} from 'vscode-jsonrpc/node';
import {
  type DetectParams,
  DetectRequest,
  type DetectResult,
  HealthRequest,
  ReadyNotification,
  type ReadyParams,
  ShutdownRequest,
  StartupFailedNotification,
  type WorkerHealthResult,
} from '../protocol/index.js';
import type { PoseWorker, WorkerExit } from './pose-worker.js';
import { StderrTail } from './stderr-tail.js';
import {
  StartupTimeoutError,
  WorkerCrashedError,
  type WorkerError,
  WorkerExitedError,
  type WorkerExitInfo,
  WorkerNotReadyError,
  WorkerProtocolError,
  WorkerRpcError,
  WorkerStartupFailedError,
  WorkerTimeoutError,
} from './worker-errors.js';
import { type WorkerState, WorkerStateMachine } from './worker-state.js';

export interface WorkerProcessOptions {
  id: string;
  /** Interpreter to run (POSE_PYTHON). */
  python: string;
  /** pose-service/ (the worker's working directory). */
  serviceDir: string;
  model: string;
  device: string;
  threads: number;
  /** POSE_MODELS_DIR for the worker; inherited when absent. */
  modelsDir?: string;
  /** Extra environment (e.g. POSE_SYNTHETIC_FAULTS in tests). */
  env?: Record<string, string>;
  startupTimeoutMs: number;
  logger: Logger;
  /** How many stderr lines to keep for crash reports (default 40). */
  stderrLines?: number;
  /** After `worker/startupFailed`, how long the process may take to exit by itself (default 2000). */
  failedExitGraceMs?: number;
}

/** How long to wait, after the exit event, for the rest of stdout and stderr (the crash's last words). */
const PIPE_DRAIN_MS = 200;

/** A worker log line at WARNING or above ("[posepool-worker 123] ERROR …"). */
const PYTHON_LOG_PROBLEM = /^\[[^\]]*\] (WARNING|ERROR|CRITICAL)\b/;

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface InFlight {
  reject: (err: Error) => void;
}

export class WorkerProcess implements PoseWorker {
  readonly id: string;
  readonly ready: Promise<ReadyParams>;
  readonly exited: Promise<WorkerExit>;

  private readonly child: ChildProcessWithoutNullStreams;
  private readonly connection: MessageConnection;
  private readonly machine: WorkerStateMachine;
  private readonly tail: StderrTail;
  private readonly stderrDone: Promise<void>;
  private readonly stdoutDone: Promise<void>;
  private readonly log: Logger;
  private readonly python: string;

  private readyInfo: ReadyParams | null = null;
  private resolveReady!: (info: ReadyParams) => void;
  private rejectReady!: (err: WorkerError) => void;
  private resolveExited!: (exit: WorkerExit) => void;
  private startupTimer: NodeJS.Timeout | undefined;
  private killTimer: NodeJS.Timeout | undefined;
  private inflight = new Set<InFlight>();
  private startupError: WorkerError | null = null;
  /** The cause the server already knows for the coming exit (timeout, protocol error). */
  private endCause: WorkerError | null = null;
  private spawnError: NodeJS.ErrnoException | undefined;
  private requested = false;
  private exitSeen = false;

  constructor(private readonly opts: WorkerProcessOptions) {
    this.id = opts.id;
    this.python = opts.python;
    this.ready = new Promise<ReadyParams>((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    // The supervisor always handles `ready`; this keeps an unobserved rejection from being fatal.
    this.ready.catch(() => undefined);
    this.exited = new Promise<WorkerExit>((resolve) => {
      this.resolveExited = resolve;
    });

    const env: NodeJS.ProcessEnv = { ...process.env, PYTHONUNBUFFERED: '1', ...opts.env };
    if (opts.modelsDir) env.POSE_MODELS_DIR = opts.modelsDir;
    const args = ['-m', 'posepool_worker', '--model', opts.model, '--device', opts.device, '--threads', String(opts.threads)];
    this.child = spawn(opts.python, args, { cwd: opts.serviceDir, env, stdio: ['pipe', 'pipe', 'pipe'], windowsHide: true });
    this.log = opts.logger.child({ workerId: opts.id, workerPid: this.child.pid });
    this.machine = new WorkerStateMachine((from, to) => this.log.trace({ from, to }, 'worker state'));
    if (this.child.pid !== undefined) liveChildren.add(this.child);

    // A write to a dead worker's stdin fails with EPIPE/EOF: that is a symptom, the exit is the cause.
    this.child.stdin.on('error', () => undefined);
    this.child.stdout.on('error', () => undefined);
    this.stdoutDone = new Promise((resolve) => {
      this.child.stdout.once('close', resolve);
      this.child.stdout.once('end', resolve);
    });
    // The worker's own warnings and errors while it serves are worth an operator's eye; the rest
    // (and everything during start-up, whose failure the supervisor reports once) is debug.
    this.tail = new StderrTail(opts.stderrLines ?? 40, 1000, (line) => {
      const loud = this.machine.serving && PYTHON_LOG_PROBLEM.test(line);
      this.log[loud ? 'warn' : 'debug']({ stderr: line }, 'worker stderr');
    });
    this.stderrDone = this.tail.attach(this.child.stderr);

    const reader = new StreamMessageReader(this.child.stdout);
    const writer = new StreamMessageWriter(this.child.stdin);
    reader.onError((err) => this.onProtocolError(err));
    writer.onError(() => undefined);
    this.connection = createMessageConnection(reader, writer);
    this.connection.onError(() => undefined);
    this.connection.onNotification(ReadyNotification.type, (params) => this.onReady(params));
    this.connection.onNotification(StartupFailedNotification.type, (params) => {
      this.onStartupFailure(new WorkerStartupFailedError(params), params.traceback);
    });
    this.connection.onUnhandledNotification((msg) => this.log.debug({ method: msg.method }, 'unhandled worker notification'));
    this.connection.listen();

    this.child.on('error', (err: NodeJS.ErrnoException) => {
      if (this.child.pid === undefined && !this.exitSeen) {
        // spawn failed (interpreter missing, not executable): there will be no 'exit' event.
        this.spawnError = err;
        void this.onExit(null, null);
      }
    });
    this.child.on('exit', (code, signal) => void this.onExit(code, signal));

    this.startupTimer = setTimeout(() => {
      if (this.machine.state !== 'starting') return;
      this.log.warn({ startupTimeoutMs: opts.startupTimeoutMs }, 'worker startup timed out; killing it');
      this.endCause = new StartupTimeoutError(opts.startupTimeoutMs, this.python);
      this.onStartupFailure(this.endCause);
      this.kill();
    }, opts.startupTimeoutMs);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get state(): WorkerState {
    return this.machine.state;
  }

  get info(): ReadyParams | null {
    return this.readyInfo;
  }

  /** The last lines of the worker's stderr. */
  stderrTail(): string[] {
    return this.tail.snapshot();
  }

  detect(params: DetectParams, timeoutMs: number): Promise<DetectResult> {
    if (!this.machine.to('busy')) return Promise.reject(new WorkerNotReadyError(this.id, this.machine.state));
    return this.request(
      () => this.connection.sendRequest(DetectRequest.type, params),
      timeoutMs,
      () => {
        this.endCause = new WorkerTimeoutError(timeoutMs, this.python);
        this.log.warn({ timeoutMs, requestId: params.requestId }, 'batch timed out; killing the worker');
        this.machine.to('stopping'); // being killed: never ready again
        this.kill();
        return this.endCause;
      },
    ).finally(() => {
      if (this.machine.state === 'busy') this.machine.to('ready');
    });
  }

  health(timeoutMs: number): Promise<WorkerHealthResult> {
    if (!this.machine.serving) return Promise.reject(new WorkerNotReadyError(this.id, this.machine.state));
    return this.request(
      () => this.connection.sendRequest(HealthRequest.type),
      timeoutMs,
      () => new WorkerTimeoutError(timeoutMs, this.python, 'health'),
    );
  }

  shutdown(graceMs: number): Promise<WorkerExit> {
    if (this.exitSeen) return this.exited;
    this.requested = true;
    const from = this.machine.state;
    if (from !== 'stopping' && this.machine.to('stopping')) {
      if (from === 'ready' || from === 'busy') {
        // Polite: ask, then close stdin (the worker also exits on EOF).
        try {
          this.connection.sendRequest(ShutdownRequest.type).then(
            () => undefined,
            () => undefined,
          );
        } catch {
          // connection already closed: the exit is on its way
        }
        this.child.stdin.end();
      } else {
        // Still loading (no protocol yet): a signal is the only way in.
        this.child.kill('SIGTERM');
      }
    }
    this.armKill(graceMs);
    return this.exited;
  }

  kill(): void {
    if (this.exitSeen) return;
    try {
      this.child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }

  private armKill(ms: number): void {
    if (this.killTimer) return;
    this.killTimer = setTimeout(() => {
      if (!this.exitSeen) {
        this.log.warn({ graceMs: ms }, 'worker did not exit in time; SIGKILL');
        this.kill();
      }
    }, ms);
  }

  /**
   * Sends a request and settles with its result, or rejects at once when the process dies
   * (WorkerCrashedError with exit code/signal and stderr tail), or on timeout.
   */
  private request<R>(send: () => Promise<R>, timeoutMs: number, onTimeout: () => Error): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      if (this.exitSeen) {
        reject(new WorkerNotReadyError(this.id, this.machine.state));
        return;
      }
      let settled = false;
      const entry: InFlight = {
        reject: (err) => finish(() => reject(err)),
      };
      const finish = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.inflight.delete(entry);
        fn();
      };
      const timer = setTimeout(() => finish(() => reject(onTimeout())), timeoutMs);
      this.inflight.add(entry);
      let pending: Promise<R>;
      try {
        pending = send();
      } catch {
        // The connection is closed: the process is exiting and onExit rejects with the cause.
        return;
      }
      pending.then(
        (result) => finish(() => resolve(result)),
        (err: unknown) => {
          if (err instanceof ResponseError) {
            finish(() => reject(new WorkerRpcError(err.code, err.message, this.python, err.data)));
          }
          // Other rejections (connection closed or disposed) come with a death: onExit reports it.
        },
      );
    });
  }

  private onReady(params: ReadyParams): void {
    if (this.machine.state !== 'starting') return;
    clearTimeout(this.startupTimer);
    this.readyInfo = params;
    this.machine.to('ready');
    this.log.debug({ model: params.model.name, device: params.device, loadMs: params.loadMs }, 'worker said ready');
    this.resolveReady(params);
  }

  private onStartupFailure(err: WorkerError, traceback?: string): void {
    if (this.machine.state !== 'starting') return;
    clearTimeout(this.startupTimer);
    this.startupError = err;
    if (traceback) this.log.debug({ traceback }, 'worker startup traceback');
    this.machine.to('stopping');
    this.rejectReady(err);
    // It exits non-zero by itself after a structured failure; make sure of it.
    this.armKill(this.opts.failedExitGraceMs ?? 2000);
  }

  private onProtocolError(err: Error): void {
    if (this.exitSeen || this.endCause) return;
    this.endCause = new WorkerProtocolError(err.message, this.python);
    this.log.error({ err: this.endCause.message }, 'worker protocol error; killing it');
    if (this.machine.state === 'starting') this.onStartupFailure(this.endCause);
    else this.machine.to('stopping'); // being killed: never ready again
    for (const entry of [...this.inflight]) entry.reject(this.endCause);
    this.kill();
  }

  private async onExit(code: number | null, signal: NodeJS.Signals | null): Promise<void> {
    if (this.exitSeen) return;
    this.exitSeen = true;
    liveChildren.delete(this.child);
    clearTimeout(this.startupTimer);
    clearTimeout(this.killTimer);
    // 'exit' can come before the pipes are read to their end: let the last messages (a
    // worker/startupFailed) and stderr lines (the traceback) arrive, without waiting long.
    await Promise.race([Promise.all([this.stderrDone, this.stdoutDone]), delay(PIPE_DRAIN_MS)]);
    // vscode-jsonrpc dispatches what it has read on a later turn of the event loop.
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    const exit: WorkerExitInfo = { exitCode: code, signal, stderrTail: this.tail.snapshot() };
    const wasState = this.machine.state;
    this.machine.to('exited');

    let error: WorkerError | undefined = this.endCause ?? undefined;
    if (this.startupError) {
      error = this.startupError;
    } else if (wasState === 'starting') {
      error = new WorkerExitedError(exit, this.python, this.spawnError);
      this.rejectReady(error);
    } else if (!this.requested && !error) {
      error = new WorkerCrashedError(exit, this.python, wasState === 'busy' ? 'batch' : 'idle');
    }
    const crash = this.endCause ?? new WorkerCrashedError(exit, this.python, 'batch');
    for (const entry of [...this.inflight]) entry.reject(crash);

    this.connection.dispose();
    this.log.debug({ exitCode: code, signal, requested: this.requested }, 'worker exited');
    this.resolveExited({ ...exit, requested: this.requested, ...(error ? { error } : {}) });
  }
}

/** Children still alive: killed if the server process exits without closing its pool. */
const liveChildren = new Set<ChildProcessWithoutNullStreams>();
process.once('exit', () => {
  for (const child of liveChildren) {
    try {
      child.kill('SIGKILL');
    } catch {
      // gone
    }
  }
});
