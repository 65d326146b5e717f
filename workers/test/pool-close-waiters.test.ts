/**
 * Closing the pool while several callers wait for a worker that never comes: every caller gets
 * PoolClosedError, and nothing rejects unhandled (which would end a Node process). Found by
 * server/test/e2e/reliability-unavailable.test.ts (close after an outage).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { PoolClosedError } from '../worker-errors.js';
import { fakeBatch, fakePool } from './support/fake-worker.js';

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);
afterEach(() => {
  process.off('unhandledRejection', onUnhandled);
});

describe('WorkerPool.close with several callers waiting (test-double workers)', () => {
  it.each([2, 3])('%i workers that never start, as many callers waiting: close settles, no unhandled rejection', async (workers) => {
    process.on('unhandledRejection', onUnhandled);
    const { pool } = fakePool(
      { start: () => ({ kind: 'never' }) },
      { workers, startupTimeoutMs: 10_000, backoff: undefined }, // the pool's own backoff
    );
    pool.start();
    const waiting = Array.from({ length: workers }, (_, i) => pool.detect(fakeBatch(`w${i}`)).catch((e: unknown) => e));
    await new Promise((r) => setTimeout(r, 20));
    await pool.close({ graceMs: 100 });
    for (const w of await Promise.all(waiting)) expect(w).toBeInstanceOf(PoolClosedError);
    await new Promise((r) => setTimeout(r, 50));
    expect(unhandled.map(String)).toEqual([]);
  });
});
