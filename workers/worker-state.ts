/**
 * A worker process's state, and the one table of allowed transitions:
 *
 *   starting → ready ⇄ busy → stopping → exited
 *   (any state but exited → exited when the process dies; starting/ready/busy → stopping on shutdown)
 *
 * `failed` is not a process state: it is a slot's verdict (crash loop), kept by the supervisor.
 */
export const WORKER_STATES = ['starting', 'ready', 'busy', 'stopping', 'exited'] as const;
export type WorkerState = (typeof WORKER_STATES)[number];

const TRANSITIONS: Record<WorkerState, readonly WorkerState[]> = {
  starting: ['ready', 'stopping', 'exited'],
  ready: ['busy', 'stopping', 'exited'],
  busy: ['ready', 'stopping', 'exited'],
  stopping: ['exited'],
  exited: [],
};

export function canTransition(from: WorkerState, to: WorkerState): boolean {
  return TRANSITIONS[from].includes(to);
}

export class WorkerStateMachine {
  private current: WorkerState = 'starting';

  constructor(private readonly onChange?: (from: WorkerState, to: WorkerState) => void) {}

  get state(): WorkerState {
    return this.current;
  }

  /** Moves to `to` if the table allows it; returns whether it moved. */
  to(to: WorkerState): boolean {
    const from = this.current;
    if (!canTransition(from, to)) return false;
    this.current = to;
    this.onChange?.(from, to);
    return true;
  }

  /** True while the process is alive and has said ready (idle or with a batch). */
  get serving(): boolean {
    return this.current === 'ready' || this.current === 'busy';
  }
}
