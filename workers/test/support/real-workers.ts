/**
 * Test support for integration tests with real Python workers (model `synthetic`, a test double
 * backend, run by the workers' interpreter: the one the set-up recorded, which has numpy, torch and cv2).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, expect } from 'vitest';
import type { DetectParams, FramePayload } from '../../../protocol/index.js';
import { WorkerPool, type WorkerPoolOptions } from '../../pool.js';
import { type CapturedLogger, captureLogger } from './capture-logger.js';
import { realWorkersPython } from './prerequisites.js';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const SERVICE_DIR = join(REPO_ROOT, 'pose-service');

/** `count` small RGB frames (rgb24, base64), indices from `first`. */
export function rgbFrames(first: number, count: number, size = 32): FramePayload[] {
  return Array.from({ length: count }, (_, i) => {
    const pixels = Buffer.alloc(size * size * 3);
    for (let p = 0; p < pixels.length; p++) pixels[p] = (p * 7 + (first + i) * 13) % 256;
    return { index: first + i, encoding: 'rgb24' as const, width: size, height: size, data: pixels.toString('base64') };
  });
}

export function rgbBatch(requestId: string, first: number, count: number): DetectParams {
  return { requestId, frames: rgbFrames(first, count), options: { tracking: false } };
}

export interface RealPool {
  pool: WorkerPool;
  log: CapturedLogger;
}

export function realPool(opts: Partial<WorkerPoolOptions> & { faults?: string }): RealPool {
  const log = captureLogger('debug');
  const { faults, env, ...rest } = opts;
  const pool = new WorkerPool({
    python: realWorkersPython(),
    serviceDir: SERVICE_DIR,
    model: 'synthetic',
    device: 'cpu',
    threads: 1,
    workers: 1,
    startupTimeoutMs: 60_000,
    batchTimeoutMs: 20_000,
    logger: log.logger,
    backoff: { initialMs: 100, maxMs: 1000 },
    env: { ...(faults ? { POSE_SYNTHETIC_FAULTS: faults } : {}), ...env },
    ...rest,
  });
  return { pool, log };
}

/** Live child processes of this process (Linux /proc; [] elsewhere). */
export function childPids(): number[] {
  if (process.platform !== 'linux') return [];
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // fields[0] = state, fields[1] = ppid; a zombie (Z) has exited
      if (Number(fields[1]) === process.pid && fields[0] !== 'Z') out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Text that must never reach a log line, a health body or an API error. */
export const PIPE_NOISE = /\bEOF\b|EPIPE|stdin write failed|write after end/;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every 50 ms until it returns true or `timeoutMs` passes. */
export async function until(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (check()) return true;
    await sleep(50);
  }
  return check();
}

/**
 * For a test file of real pools: `open` (push each pool: closed after every test, which must leave
 * no child process) and `tmp` (a private folder for the file, removed after all its tests).
 */
export function realPoolHarness(prefix: string): { open: WorkerPool[]; tmp: string } {
  const open: WorkerPool[] = [];
  const tmp = mkdtempSync(join(tmpdir(), `posepool-${prefix}-`));
  afterEach(async () => {
    await Promise.all(open.splice(0).map((p) => p.close({ graceMs: 1000 })));
    expect(childPids()).toEqual([]);
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  return { open, tmp };
}
