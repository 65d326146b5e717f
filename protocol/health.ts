/** `health`: liveness and memory of one worker, answered between batches. */
import { RequestType0 } from 'vscode-jsonrpc';
import { PROTOCOL } from './spec.js';

export interface WorkerHealthResult {
  pid: number;
  model: string;
  device: string;
  uptimeMs: number;
  /** Resident set size of the worker process. */
  rssBytes: number;
  /** torch.cuda.memory_allocated / max_memory_allocated on the worker's device; null on CPU. */
  gpuMemoryBytes: number | null;
  gpuMaxMemoryBytes: number | null;
  batches: number;
  frames: number;
}

export namespace HealthRequest {
  export const method = PROTOCOL.methods.health;
  export const type = new RequestType0<WorkerHealthResult, void>(method);
}
