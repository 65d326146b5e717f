/**
 * Regression: closing the pool while several callers wait for a worker that never comes. Each
 * pending create settles as a CLOSED lease, lent to a waiting client and handed straight back;
 * those leases were one shared object, and generic-pool keys its loans by object, so the second
 * release rejected ("Resource not currently part of this pool") as an unhandled rejection, which
 * ends a Node process. Found by server/test/reliability-unavailable.test.ts (close after an outage).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { DetectParams } from '../../protocol/index.js';
import { WorkerPool } from '../pool.js';
import { PoolClosedError } from '../worker-errors.js';
import { captureLogger } from './support/capture-logger.js';
import { FakeFleet } from './support/fake-worker.js';

const batch = (requestId: string): DetectParams => ({
  requestId,
  frames: [{ index: 0, encoding: 'rgb24', width: 1, height: 1, data: 'AAAA' }],
});

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);
afterEach(() => {
  process.off('unhandledRejection', onUnhandled);
});

describe('WorkerPool.close with several callers waiting (test-double workers)', () => {
  it.each([2, 3])('%i workers that never start, as many callers waiting: close settles, no unhandled rejection', async (workers) => {
    process.on('unhandledRejection', onUnhandled);
    const fleet = new FakeFleet({ start: () => ({ kind: 'never' }) });
    const pool = new WorkerPool({
      python: '/fake/bin/python',
      serviceDir: '/nowhere',
      model: 'synthetic',
      device: 'cpu',
      threads: 1,
      workers,
      startupTimeoutMs: 10_000,
      batchTimeoutMs: 200,
      logger: captureLogger('debug').logger,
      spawnWorker: (id) => fleet.spawn(id),
    });
    pool.start();
    const waiting = Array.from({ length: workers }, (_, i) => pool.detect(batch(`w${i}`)).catch((e: unknown) => e));
    await new Promise((r) => setTimeout(r, 20));
    await pool.close({ graceMs: 100 });
    for (const w of await Promise.all(waiting)) expect(w).toBeInstanceOf(PoolClosedError);
    await new Promise((r) => setTimeout(r, 50));
    expect(unhandled.map(String)).toEqual([]);
  });
});
