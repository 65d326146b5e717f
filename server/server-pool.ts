/** The pool as the HTTP layer sees it: the pipeline's needs plus health (workers/pool.ts implements it). */
import type { PosePool } from './pipeline/pose-pool.js';

export interface WorkerLastError {
  type: string;
  message: string;
  hint: string;
  summary?: string;
  python?: string;
  [extra: string]: unknown;
}

export interface PoolHealthBody {
  status: 'ready' | 'starting' | 'degraded' | 'unavailable';
  ready: number;
  desired: number;
  workers: {
    id: string;
    state: string;
    pid: number | null;
    model: string;
    device: string | null;
    restarts: number;
    lastError: WorkerLastError | null;
  }[];
}

export interface ServerPool extends PosePool {
  health(): PoolHealthBody;
  isAvailable(): boolean;
  lastErrors(): WorkerLastError[];
}

/** lastError as an API error may carry it: the cause and the fix, without paths or stderr. */
export function publicCause(e: WorkerLastError): { type: string; message: string; hint: string } {
  return { type: e.type, message: e.message, hint: e.hint };
}
