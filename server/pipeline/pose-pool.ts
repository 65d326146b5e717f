/** What the pipeline needs of the worker pool (workers/pool.ts implements it; tests may pass a double). */
import type { DetectParams, DetectResult } from '../../protocol/index.js';

export interface PoseModelInfo {
  name: string;
  device: string;
  keypoints: string[];
  skeleton: [number, number][];
  extras?: string[];
}

export interface PosePool {
  detect(
    params: DetectParams,
    opts?: { signal?: AbortSignal },
  ): Promise<DetectResult & { workerId?: string; attempts?: number }>;
  model(): PoseModelInfo | null;
  readonly desired: number;
}

/** Pool errors the pipeline tells apart, by their stable `code` (workers/worker-errors.ts). */
export function poolErrorCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}
