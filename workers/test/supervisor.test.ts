/** Supervisor scheduling and state, with in-memory test-double workers and fake timers. */
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type SlotView, Supervisor } from '../supervisor.js';
import { FakeFleet, type FakeScript } from './support/fake-worker.js';

const silent = pino({ level: 'silent' });

function make(
  script: FakeScript,
  workers = 1,
  extra: Partial<ConstructorParameters<typeof Supervisor>[0]> = {},
  spawnTimes: number[] = [],
) {
  const fleet = new FakeFleet(script);
  const sup = new Supervisor({
    workers,
    spawnWorker: (id) => {
      spawnTimes.push(Date.now());
      return fleet.spawn(id);
    },
    logger: silent,
    backoff: { initialMs: 1000, maxMs: 60_000, resetAfterMs: 30_000 },
    crashLoop: { crashes: 3, windowMs: 60_000 },
    ...extra,
  });
  return { fleet, sup };
}

describe('Supervisor', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 0 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('spawns N workers, reports each ready once, and shows an idle ready worker per slot', async () => {
    const { fleet, sup } = make({}, 3);
    const ready: string[] = [];
    sup.on('worker-ready', (v: SlotView) => ready.push(v.id));
    expect(sup.view().map((s) => s.state)).toEqual(['stopped', 'stopped', 'stopped']);
    sup.start();
    expect(fleet.spawned).toHaveLength(3);
    expect(sup.view().map((s) => s.state)).toEqual(['starting', 'starting', 'starting']);
    expect(sup.idleWorker('w0')).toBeNull();
    await vi.advanceTimersByTimeAsync(1);
    expect(sup.readyCount).toBe(3);
    expect(ready.sort()).toEqual(['w0', 'w1', 'w2']);
    expect(sup.slotIds.map((id) => sup.idleWorker(id)?.id)).toEqual(['w0', 'w1', 'w2']);
    sup.stopRestarts();
    expect(sup.view().map((s) => s.state)).toEqual(['stopping', 'stopping', 'stopping']);
    expect(sup.idleWorker('w0')).toBeNull();
  });

  it('retries a failing start with capped exponential backoff, marks the slot failed after 3, and keeps trying', async () => {
    const times: number[] = [];
    const { fleet, sup: sup2 } = make(
      { start: () => ({ kind: 'fail', afterMs: 10 }) },
      1,
      { backoff: { initialMs: 1000, maxMs: 8000 } },
      times,
    );
    const failed: unknown[] = [];
    sup2.on('worker-failed', (v) => failed.push(v));
    sup2.start();
    await vi.advanceTimersByTimeAsync(50);
    const [slot] = sup2.view();
    expect(slot.lastError).toMatchObject({
      type: 'ModuleNotFoundError',
      message: "No module named 'cv2'",
      python: '/fake/bin/python',
      exitCode: 3,
    });
    expect(slot.state).toBe('backoff');
    expect(slot.nextRestartMs).toBe(1000);
    expect(sup2.unavailable()).toBe(true);
    await vi.advanceTimersByTimeAsync(120_000);
    // spawn at 0; each fails 11 ms later; next spawn after 1, 2, 4, 8, 8, … s
    const gaps = times.slice(1).map((t, i) => t - times[i]);
    expect(gaps.slice(0, 6)).toEqual([1011, 2011, 4011, 8011, 8011, 8011]);
    expect(failed).toHaveLength(1); // reported once, on entering the loop
    expect(sup2.view()[0].state).toBe('failed');
    expect(sup2.view()[0].restarts).toBe(times.length - 1);
    expect(fleet.alive().length).toBeLessThanOrEqual(1);
  });

  it('clears failed and lastError when the slot finally becomes ready', async () => {
    let healthy = false;
    const { sup } = make({ start: () => (healthy ? { kind: 'ready', afterMs: 5 } : { kind: 'fail', afterMs: 5 }) }, 1, {
      backoff: { initialMs: 100, maxMs: 400 },
    });
    sup.start();
    await vi.advanceTimersByTimeAsync(2000);
    expect(sup.view()[0].state).toBe('failed');
    expect(sup.readyCount).toBe(0);
    healthy = true;
    await vi.advanceTimersByTimeAsync(500);
    expect(sup.view()[0]).toMatchObject({ state: 'ready', lastError: null });
    expect(sup.readyCount).toBe(1);
    expect(sup.unavailable()).toBe(false);
  });

  it('replaces a worker that crashed after serving stably at once, and backs off on quick repeats', async () => {
    const times: number[] = [];
    const { fleet, sup } = make({}, 1, {}, times);
    sup.start();
    await vi.advanceTimersByTimeAsync(40_000); // ready and stable
    fleet.spawned[0].crash('SIGSEGV');
    await vi.advanceTimersByTimeAsync(1);
    expect(times).toEqual([0, 40_000]); // no delay
    expect(sup.view()[0].restarts).toBe(1);
    await vi.advanceTimersByTimeAsync(100);
    fleet.spawned[1].crash(null, 1); // crashed again soon after ready: back off
    await vi.advanceTimersByTimeAsync(5000);
    expect(times[2] - times[1]).toBeGreaterThanOrEqual(1100);
    expect(sup.view()[0].lastError).toBeNull(); // the third is ready
    expect(sup.readyCount).toBe(1);
  });

  it('a crash of a ready worker is not "unavailable": its replacement is coming', async () => {
    const { fleet, sup } = make({}, 1);
    sup.start();
    await vi.advanceTimersByTimeAsync(10);
    fleet.spawned[0].crash('SIGKILL');
    await vi.advanceTimersByTimeAsync(1);
    expect(sup.readyCount).toBe(0);
    expect(sup.view()[0].state).toBe('backoff');
    expect(sup.view()[0].lastError).toMatchObject({ code: 'WORKER_CRASHED', signal: 'SIGKILL' });
    expect(sup.unavailable()).toBe(false);
    expect(sup.lastErrors()).toHaveLength(1);
  });

  it('exit right after ready, again and again, ends as a failed slot with growing delays', async () => {
    const times: number[] = [];
    const fleet = new FakeFleet({});
    const sup = new Supervisor({
      workers: 1,
      spawnWorker: (id) => {
        times.push(Date.now());
        const w = fleet.spawn(id);
        void w.ready.then(() => setTimeout(() => w.crash(null, 3), 5));
        return w;
      },
      logger: silent,
      backoff: { initialMs: 100, maxMs: 10_000 },
    });
    sup.start();
    await vi.advanceTimersByTimeAsync(3000);
    const gaps = times.slice(1).map((t, i) => t - times[i]);
    // each gap = time to ready and exit (a few ms) + the backoff delay 100, 200, 400, 800
    const overhead = gaps.slice(0, 4).map((g, i) => g - 100 * 2 ** i);
    for (const o of overhead) expect(o).toBeGreaterThanOrEqual(5);
    for (const o of overhead) expect(o).toBeLessThan(10);
    expect(sup.view()[0].state).toBe('failed');
    expect(sup.unavailable()).toBe(true);
  });

  it('close stops restarts and shuts every worker down', async () => {
    const { fleet, sup } = make({ start: (i) => (i === 0 ? { kind: 'ready' } : { kind: 'fail' }) }, 2);
    sup.start();
    await vi.advanceTimersByTimeAsync(50);
    const closing = sup.close(1000);
    await vi.advanceTimersByTimeAsync(10);
    await closing;
    const before = fleet.spawned.length;
    await vi.advanceTimersByTimeAsync(120_000);
    expect(fleet.spawned.length).toBe(before);
    expect(fleet.alive()).toHaveLength(0);
    expect(fleet.spawned[0].shutdownCalls).toBe(1);
    expect(sup.view().map((s) => s.state)).toEqual(['stopped', 'stopped']);
    expect(sup.readyCount).toBe(0);
  });
});
