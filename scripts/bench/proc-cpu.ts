/**
 * CPU time of processes (Linux /proc/PID/stat): own user+system time, and that of its children
 * already waited for (for the server: the ffmpeg and ffprobe runs of the requests). NaN elsewhere.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let ticksPerSecond: number | null = null;

function clockTicks(): number {
  if (ticksPerSecond === null) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

export interface ProcCpu {
  /** user + system of the process itself, ms. */
  selfMs: number;
  /** user + system of its waited-for children, ms. */
  childrenMs: number;
}

export function procCpu(pid: number): ProcCpu {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at field 3.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ms = (i: number) => (Number(f[i - 3]) * 1000) / clockTicks();
    return { selfMs: ms(14) + ms(15), childrenMs: ms(16) + ms(17) };
  } catch {
    return { selfMs: NaN, childrenMs: NaN };
  }
}

/** CPU used by the server (its own, its ffmpeg/ffprobe children) and by each worker while `fn` runs. */
export async function measureCpu<T>(
  serverPid: number,
  workerPids: number[],
  fn: () => Promise<T>,
): Promise<{ value: T; serverMs: number; mediaToolsMs: number; workersMs: number[] }> {
  const s0 = procCpu(serverPid);
  const w0 = workerPids.map(procCpu);
  const value = await fn();
  const s1 = procCpu(serverPid);
  const w1 = workerPids.map(procCpu);
  return {
    value,
    serverMs: s1.selfMs - s0.selfMs,
    mediaToolsMs: s1.childrenMs - s0.childrenMs,
    workersMs: w1.map((w, i) => w.selfMs - w0[i].selfMs),
  };
}
