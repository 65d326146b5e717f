import { describe, expect, it } from 'vitest';
import { Backoff } from '../backoff.js';
import { CrashWindow } from '../crash-window.js';

describe('Backoff', () => {
  it('defaults to 1 s doubling, capped at 60 s', () => {
    const b = new Backoff();
    const delays = Array.from({ length: 9 }, () => b.next());
    expect(delays).toEqual([1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]);
    expect(b.attempts).toBe(9);
  });

  it('reset starts the sequence again', () => {
    const b = new Backoff({ initialMs: 100, maxMs: 250 });
    expect([b.next(), b.next(), b.next()]).toEqual([100, 200, 250]);
    b.reset();
    expect(b.attempts).toBe(0);
    expect(b.peek()).toBe(100);
    expect(b.next()).toBe(100);
  });

  it('never caps below the initial delay', () => {
    const b = new Backoff({ initialMs: 500, maxMs: 100 });
    expect(b.next()).toBe(500);
    expect(b.next()).toBe(500);
  });
});

describe('CrashWindow', () => {
  it('counts crashes inside the window only', () => {
    let now = 0;
    const w = new CrashWindow({ crashes: 3, windowMs: 1000 }, () => now);
    w.record();
    now = 400;
    w.record();
    expect(w.looping).toBe(false);
    now = 900;
    w.record();
    expect(w.count).toBe(3);
    expect(w.looping).toBe(true);
    now = 1001; // the first crash left the window
    expect(w.count).toBe(2);
    expect(w.looping).toBe(false);
  });
});
