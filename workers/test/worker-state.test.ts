import { describe, expect, it } from 'vitest';
import { canTransition, WORKER_STATES, WorkerStateMachine } from '../worker-state.js';

describe('worker state machine', () => {
  it('allows exactly starting → ready ⇄ busy → stopping → exited (and death from any live state)', () => {
    const allowed = WORKER_STATES.flatMap((from) => WORKER_STATES.filter((to) => canTransition(from, to)).map((to) => `${from}>${to}`));
    expect(allowed.sort()).toEqual(
      [
        'starting>ready',
        'starting>stopping',
        'starting>exited',
        'ready>busy',
        'ready>stopping',
        'ready>exited',
        'busy>ready',
        'busy>stopping',
        'busy>exited',
        'stopping>exited',
      ].sort(),
    );
  });

  it('refuses work states before ready and anything after exited', () => {
    const m = new WorkerStateMachine();
    expect(m.to('busy')).toBe(false);
    expect(m.state).toBe('starting');
    expect(m.to('ready')).toBe(true);
    expect(m.serving).toBe(true);
    expect(m.to('busy')).toBe(true);
    expect(m.to('ready')).toBe(true);
    expect(m.to('exited')).toBe(true);
    expect(m.to('ready')).toBe(false);
    expect(m.state).toBe('exited');
    expect(m.serving).toBe(false);
  });

  it('reports each change once', () => {
    const seen: string[] = [];
    const m = new WorkerStateMachine((from, to) => seen.push(`${from}>${to}`));
    m.to('ready');
    m.to('ready');
    m.to('stopping');
    m.to('exited');
    expect(seen).toEqual(['starting>ready', 'ready>stopping', 'stopping>exited']);
  });
});
