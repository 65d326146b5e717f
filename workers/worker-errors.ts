/**
 * The one catalogue of worker and pool errors: each a typed Error with a stable `code`, and the
 * `lastError` record that /health and the 503 POSE_SERVICE_UNAVAILABLE body carry.
 *
 * Rule: no message built here ever carries the text of a broken pipe ("write EOF", "EPIPE",
 * "write after end", "stdin write failed"). A failed write to a worker's stdin is a symptom; the
 * cause is why the process exited, and that is what these errors report.
 */
import type { StartupFailedParams } from '../protocol/index.js';

export const WORKER_ERROR_CODES = {
  WORKER_STARTUP_FAILED: 'the worker reported a structured startup failure (missing module, model files, device, …)',
  STARTUP_TIMEOUT: 'the worker did not say ready within startupTimeoutMs and was killed',
  WORKER_EXITED: 'the worker process exited (or could not be spawned) before it said ready',
  WORKER_CRASHED: 'the worker process died while it held a batch, or while it was ready',
  WORKER_TIMEOUT: 'a batch exceeded batchTimeoutMs; the worker was killed and replaced',
  WORKER_PROTOCOL_ERROR: 'the worker wrote something that is not a protocol message to stdout, and was killed',
  WORKER_RPC_ERROR: 'the worker answered a request with a JSON-RPC error',
  WORKER_NOT_READY: 'work was offered to a worker that is not ready (a bug in the caller)',
  POOL_UNAVAILABLE: 'no worker is ready and none can be soon: every worker is failing to start',
  POOL_BUSY: 'the queue of batches waiting for a worker is full, or no worker became free in time',
  POOL_CLOSED: 'the pool is closing or closed',
  CANCELLED: 'the caller cancelled the batch (its AbortSignal fired)',
} as const;

export type WorkerErrorCode = keyof typeof WORKER_ERROR_CODES;

/** Why a worker process ended, as observed by the server. */
export interface WorkerExitInfo {
  exitCode: number | null;
  signal: string | null;
  /** Last lines the worker wrote to stderr (bounded). */
  stderrTail: string[];
}

/**
 * The last error of a worker slot, as /health and POSE_SERVICE_UNAVAILABLE show it.
 * For a Python startup failure, `type`/`message` are the Python exception's
 * (e.g. "ModuleNotFoundError" / "No module named 'cv2'").
 */
export type WorkerLastError = {
  code: WorkerErrorCode;
  type: string;
  message: string;
  hint: string;
  /** One line: "ModuleNotFoundError: No module named 'cv2' (python: /venv/bin/python)". */
  summary: string;
  python?: string;
  missingModule?: string | null;
  exitCode?: number | null;
  signal?: string | null;
  stderrTail?: string[];
  /** ISO time the error was observed. */
  at: string;
};

const HINT_DOCTOR = 'run `npm run doctor` to check the pose-service environment';

export abstract class WorkerError extends Error {
  abstract readonly code: WorkerErrorCode;
  /** Python exception type, or one of protocol.json startupFailureTypes, or a name for server-side causes. */
  readonly type: string;
  readonly hint: string;
  readonly python?: string;
  readonly missingModule?: string | null;
  readonly exitCode?: number | null;
  readonly signal?: string | null;
  readonly stderrTail?: string[];
  /** The worker it happened on (set by the pool). */
  workerId?: string;

  constructor(
    message: string,
    fields: {
      type: string;
      hint: string;
      python?: string;
      missingModule?: string | null;
      exit?: WorkerExitInfo;
      cause?: unknown;
    },
  ) {
    super(message, fields.cause === undefined ? undefined : { cause: fields.cause });
    this.name = new.target.name;
    this.type = fields.type;
    this.hint = fields.hint;
    if (fields.python !== undefined) this.python = fields.python;
    if (fields.missingModule !== undefined) this.missingModule = fields.missingModule;
    if (fields.exit) {
      this.exitCode = fields.exit.exitCode;
      this.signal = fields.exit.signal;
      this.stderrTail = fields.exit.stderrTail.map(sanitize);
    }
  }

  /** "ModuleNotFoundError: No module named 'cv2' (python: /usr/bin/python3)" */
  get summary(): string {
    const python = this.python ? ` (python: ${this.python})` : '';
    return `${this.type}: ${this.message}${python}`;
  }

  toLastError(at: Date = new Date()): WorkerLastError {
    const out: WorkerLastError = {
      code: this.code,
      type: this.type,
      message: this.message,
      hint: this.hint,
      summary: this.summary,
      at: at.toISOString(),
    };
    if (this.python !== undefined) out.python = this.python;
    if (this.missingModule !== undefined) out.missingModule = this.missingModule;
    if (this.exitCode !== undefined) out.exitCode = this.exitCode;
    if (this.signal !== undefined) out.signal = this.signal;
    if (this.stderrTail !== undefined && this.stderrTail.length > 0) out.stderrTail = this.stderrTail;
    return out;
  }
}

/** "exit code 3", "signal SIGKILL", or "exit code unknown". */
export function describeExit(exit: Pick<WorkerExitInfo, 'exitCode' | 'signal'>): string {
  if (exit.signal) return `signal ${exit.signal}`;
  if (exit.exitCode !== null && exit.exitCode !== undefined) return `exit code ${exit.exitCode}`;
  return 'exit code unknown';
}

/** The worker sent `worker/startupFailed`: the Python exception, the interpreter, the fix. */
export class WorkerStartupFailedError extends WorkerError {
  readonly code = 'WORKER_STARTUP_FAILED' as const;
  readonly traceback?: string;
  constructor(params: StartupFailedParams) {
    super(params.message, {
      type: params.type,
      hint: params.hint || HINT_DOCTOR,
      python: params.python,
      missingModule: params.missingModule ?? null,
    });
    if (params.traceback) this.traceback = params.traceback;
  }
}

export class StartupTimeoutError extends WorkerError {
  readonly code = 'STARTUP_TIMEOUT' as const;
  constructor(timeoutMs: number, python: string, exit?: WorkerExitInfo) {
    super(`the worker did not say ready within ${timeoutMs} ms and was killed`, {
      type: 'StartupTimeout',
      hint: `raise POSE_STARTUP_TIMEOUT_MS if the model is slow to load, or ${HINT_DOCTOR}`,
      python,
      exit,
    });
  }
}

/**
 * The process ended before it said ready and without a structured failure: a crash in the
 * bootstrap, a missing interpreter, a wrong working directory. When its stderr ends with a Python
 * exception line, that exception's type and message are used.
 */
export class WorkerExitedError extends WorkerError {
  readonly code = 'WORKER_EXITED' as const;
  constructor(exit: WorkerExitInfo, python: string, spawnError?: NodeJS.ErrnoException) {
    if (spawnError) {
      const missing = spawnError.code === 'ENOENT';
      super(
        missing
          ? `the Python interpreter ${python} was not found`
          : `the Python interpreter ${python} could not be started (${spawnError.code ?? spawnError.message})`,
        {
          type: missing ? 'PythonNotFound' : 'SpawnFailed',
          hint: 'set POSE_PYTHON to an existing Python 3 interpreter, or run `npm run setup`',
          python,
          exit,
        },
      );
      return;
    }
    const raised = lastPythonException(exit.stderrTail);
    const how = describeExit(exit);
    super(raised ? raised.message : `the worker exited (${how}) before it said ready${lastLineSuffix(exit.stderrTail)}`, {
      type: raised ? raised.type : 'WorkerExited',
      hint: HINT_DOCTOR,
      python,
      missingModule: raised?.missingModule,
      exit,
    });
  }
}

/** The process died while ready or while it held a batch. */
export class WorkerCrashedError extends WorkerError {
  readonly code = 'WORKER_CRASHED' as const;
  constructor(exit: WorkerExitInfo, python: string, during: 'batch' | 'idle' | 'request' = 'batch') {
    const raised = lastPythonException(exit.stderrTail);
    const what = during === 'batch' ? 'with a batch in flight' : during === 'idle' ? 'while idle' : 'during a request';
    const cause = raised ? `: ${raised.type}: ${raised.message}` : lastLineSuffix(exit.stderrTail);
    super(`the worker died (${describeExit(exit)}) ${what}${cause}`, {
      type: 'WorkerCrashed',
      hint: 'see the worker stderr tail; the worker is replaced automatically',
      python,
      exit,
    });
  }
}

export class WorkerTimeoutError extends WorkerError {
  readonly code = 'WORKER_TIMEOUT' as const;
  constructor(timeoutMs: number, python: string, what: 'batch' | 'health' = 'batch') {
    const message =
      what === 'batch'
        ? `the batch took longer than ${timeoutMs} ms; the worker was killed and is being replaced`
        : `the worker did not answer a health request within ${timeoutMs} ms`;
    super(message, {
      type: 'WorkerTimeout',
      hint: 'raise POSE_BATCH_TIMEOUT_MS or lower POSE_BATCH_SIZE',
      python,
    });
  }
}

export class WorkerProtocolError extends WorkerError {
  readonly code = 'WORKER_PROTOCOL_ERROR' as const;
  constructor(detail: string, python: string) {
    super(`the worker wrote something that is not a protocol message to stdout (${sanitize(detail)}); it was killed`, {
      type: 'ProtocolError',
      hint: 'only protocol messages may reach the worker stdout; report this as a bug with the stderr tail',
      python,
    });
  }
}

/** The worker answered with a JSON-RPC error object; the process is still alive. */
export class WorkerRpcError extends WorkerError {
  readonly code = 'WORKER_RPC_ERROR' as const;
  readonly rpcCode: number;
  readonly data?: unknown;
  constructor(rpcCode: number, message: string, python: string, data?: unknown) {
    super(sanitize(message), { type: 'RpcError', hint: HINT_DOCTOR, python });
    this.rpcCode = rpcCode;
    if (data !== undefined) this.data = data;
  }
}

export class WorkerNotReadyError extends WorkerError {
  readonly code = 'WORKER_NOT_READY' as const;
  constructor(workerId: string, state: string) {
    super(`worker ${workerId} is ${state}, not ready; no work is sent to it`, { type: 'WorkerNotReady', hint: '' });
  }
}

/** Pool-level errors: no single worker is at fault. */
export abstract class PoolError extends Error {
  abstract readonly code: WorkerErrorCode;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class PoolUnavailableError extends PoolError {
  readonly code = 'POOL_UNAVAILABLE' as const;
  /** The failing workers' last errors (what POSE_SERVICE_UNAVAILABLE carries). */
  readonly lastErrors: WorkerLastError[];
  constructor(lastErrors: WorkerLastError[], detail?: string) {
    const first = lastErrors[0];
    const why = first ? `: ${first.summary}. Fix: ${first.hint}` : detail ? `: ${detail}` : '';
    super(`no pose worker is ready${why}`);
    this.lastErrors = lastErrors;
  }
}

export class PoolBusyError extends PoolError {
  readonly code = 'POOL_BUSY' as const;
  readonly reason: 'queue-full' | 'wait-timeout';
  constructor(reason: 'queue-full' | 'wait-timeout', detail: string) {
    super(detail);
    this.reason = reason;
  }
}

export class PoolClosedError extends PoolError {
  readonly code = 'POOL_CLOSED' as const;
  constructor() {
    super('the worker pool is shutting down');
  }
}

export class CancelledError extends PoolError {
  readonly code = 'CANCELLED' as const;
  constructor(reason?: unknown) {
    super('the batch was cancelled by its caller', reason === undefined ? undefined : { cause: reason });
  }
}

export function isWorkerErrorCode(code: unknown): code is WorkerErrorCode {
  return typeof code === 'string' && Object.hasOwn(WORKER_ERROR_CODES, code);
}

/** Text of broken pipes: never shown to users (the process's exit is the cause). */
const PIPE_NOISE = /\b(write )?(EOF|EPIPE|ECONNRESET)\b|write after end|stdin write failed|broken pipe/gi;

/** Replaces pipe-error words in text meant for users. */
export function sanitize(text: string): string {
  return text.replace(PIPE_NOISE, 'pipe closed');
}

const PYTHON_EXCEPTION_LINE = /^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning)):\s?(.*)$/;

/** The last "SomeError: message" line of a Python traceback in stderr, if any. */
export function lastPythonException(lines: string[]): { type: string; message: string; missingModule: string | null } | null {
  for (let i = lines.length - 1; i >= 0; i--) {
    const m = PYTHON_EXCEPTION_LINE.exec(lines[i].trim());
    if (m) {
      const type = m[1].split('.').pop() as string;
      const message = sanitize(m[2]);
      const mod = /No module named '([^']+)'/.exec(message);
      return { type, message, missingModule: mod ? mod[1] : null };
    }
  }
  return null;
}

function lastLineSuffix(lines: string[]): string {
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i].trim();
    if (line) return `: ${sanitize(line).slice(0, 300)}`;
  }
  return '';
}
