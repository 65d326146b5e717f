import { describe, expect, it } from 'vitest';
import { Admission } from '../admission.js';

describe('Admission', () => {
  it('runs up to `active`, queues up to `queued`, refuses the rest with BUSY and Retry-After', async () => {
    const a = new Admission(2, 1, 7);
    const r1 = await a.enter();
    await a.enter();
    const third = a.enter();
    await expect(a.enter()).rejects.toMatchObject({ code: 'BUSY', status: 503, retryAfterS: 7 });
    expect(a.stats).toEqual({ active: 2, queued: 1 });
    r1();
    const r3 = await third;
    expect(a.stats).toEqual({ active: 2, queued: 0 });
    r3();
    r3(); // a second release is a no-op
    expect(a.stats).toEqual({ active: 1, queued: 0 });
  });

  it('drops a waiter whose request is aborted, and refuses everything after close', async () => {
    const a = new Admission(1, 5);
    await a.enter();
    const ac = new AbortController();
    const waiting = a.enter(ac.signal);
    ac.abort(new Error('client gone'));
    await expect(waiting).rejects.toThrow('client gone');
    const other = a.enter();
    a.close();
    await expect(other).rejects.toMatchObject({ code: 'SHUTTING_DOWN' });
    await expect(a.enter()).rejects.toMatchObject({ code: 'SHUTTING_DOWN' });
  });

  it('tryEnter refuses synchronously: BUSY, SHUTTING_DOWN, or the reason of a signal already aborted (which could never leave the queue)', async () => {
    const a = new Admission(1, 1);
    const { slot } = a.tryEnter();
    a.tryEnter(); // queued
    expect(() => a.tryEnter()).toThrow(expect.objectContaining({ code: 'BUSY' }));
    expect(() => a.assertRoom()).toThrow(expect.objectContaining({ code: 'BUSY' }));
    (await slot)();
    const gone = new AbortController();
    gone.abort(new Error('client gone'));
    expect(() => a.tryEnter(gone.signal)).toThrow('client gone');
    expect(a.stats).toEqual({ active: 1, queued: 0 });
    a.close();
    expect(() => a.tryEnter()).toThrow(expect.objectContaining({ code: 'SHUTTING_DOWN' }));
  });

  it('giveBack releases a place never used, or nothing when the slot was refused', async () => {
    const a = new Admission(1, 0);
    const { slot } = a.tryEnter();
    Admission.giveBack(slot);
    await new Promise((r) => setImmediate(r));
    expect(a.stats).toEqual({ active: 0, queued: 0 });
    Admission.giveBack(Promise.reject(new Error('refused')));
  });
});
