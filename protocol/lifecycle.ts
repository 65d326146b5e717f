/**
 * Lifecycle messages: how a worker announces itself, how it fails to start, how it is told to stop.
 *
 *   worker → server  notification `worker/ready`          once, after the model is loaded
 *   worker → server  notification `worker/startupFailed`  instead of ready; the worker then exits non-zero
 *   server → worker  request      `shutdown`              the worker answers, then exits 0
 *
 * The server never sends `detect` to a worker that has not sent `worker/ready`.
 */
import { NotificationType, RequestType0 } from 'vscode-jsonrpc';
import { PROTOCOL } from './spec.js';

export interface ReadyParams {
  pid: number;
  /** sys.executable of the worker. */
  python: string;
  pythonVersion: string;
  model: {
    name: string;
    keypoints: string[];
    skeleton: [number, number][];
    /** Extra per-person fields this model adds: protocol.json `models[name].extras` (keys of `personExtras`). */
    extras?: string[];
  };
  /** The torch device actually used: "cpu", "cuda:0", … */
  device: string;
  /** torch intra-op threads. */
  threads: number;
  /** Library versions: python, torch, numpy, cv2, … */
  versions: Record<string, string>;
  /** Model load time, import of heavy modules included. */
  loadMs: number;
}

export interface StartupFailedParams {
  /** The Python exception type, e.g. "ModuleNotFoundError", or one of protocol.json's startupFailureTypes. */
  type: string;
  message: string;
  /** For ModuleNotFoundError / ImportError: the module that is missing (e.g. "cv2"). */
  missingModule: string | null;
  /** The fix, in one line: `npm run setup`, a pip/apt package, `npm install`, `npm run models:download -- NAME`. */
  hint: string;
  /** sys.executable of the worker. */
  python: string;
  /** The formatted traceback, for the log (never for API bodies). */
  traceback?: string;
}

export interface ShutdownResult {
  ok: true;
}

export namespace ReadyNotification {
  export const method = PROTOCOL.notifications.ready;
  export const type = new NotificationType<ReadyParams>(method);
}

export namespace StartupFailedNotification {
  export const method = PROTOCOL.notifications.startupFailed;
  export const type = new NotificationType<StartupFailedParams>(method);
}

export namespace ShutdownRequest {
  export const method = PROTOCOL.methods.shutdown;
  export const type = new RequestType0<ShutdownResult, void>(method);
}
