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
});
