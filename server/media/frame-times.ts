/**
 * Which frames one pass of the sampling filter keeps, known before anything is decoded: the
 * frames' presentation times come from the container's packets (ffprobe demuxes, it does not
 * decode), and the filter's rule (frame-source.ts, samplingFilter) is applied to them here. A
 * fan-out plan cuts the kept frames into ranges that, decoded apart, give exactly those frames.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface FrameTimesScan {
  /** Presentation times in seconds, ascending, in the file's own timeline (the decoder's output order). */
  times: number[];
}

/**
 * The video stream's frame times, or null where the packets do not tell them (a packet without a
 * time, ffprobe failing): the caller then decodes the video in one pass. `maxDecodedFrames` keeps
 * the first that many, as the filter's trim does.
 */
export async function scanFrameTimes(
  ffprobe: string,
  file: string,
  o: { maxDecodedFrames?: number; timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<FrameTimesScan | null> {
  const args = ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=pts_time,flags', '-of', 'csv=p=0', file];
  const child = spawn(ffprobe, args, { stdio: ['ignore', 'pipe', 'ignore'], windowsHide: true });
  const kill = () => child.kill('SIGKILL');
  const timer = setTimeout(kill, o.timeoutMs ?? 60_000);
  o.signal?.addEventListener('abort', kill, { once: true });
  const exited = new Promise<number | null>((resolve) => {
    child.once('close', (code) => resolve(code));
    child.once('error', () => resolve(-1));
  });
  const times: number[] = [];
  let unknown = false;
  try {
    // One line per packet: `0.033333,__,` (side data may add fields, and blank lines); D marks a packet the decoder drops.
    for await (const line of createInterface({ input: child.stdout })) {
      const [pts, flags] = line.split(',');
      if (!flags) continue;
      if (flags.includes('D')) continue;
      const t = Number(pts);
      if (pts === 'N/A' || !Number.isFinite(t)) unknown = true;
      else times.push(t);
    }
    if ((await exited) !== 0 || unknown || times.length === 0) return null;
  } finally {
    clearTimeout(timer);
    o.signal?.removeEventListener('abort', kill);
    if (child.exitCode === null && child.signalCode === null) kill();
  }
  times.sort((a, b) => a - b);
  if (o.maxDecodedFrames && times.length > o.maxDecodedFrames) times.length = o.maxDecodedFrames;
  return { times };
}

/**
 * The frames the sampling filter keeps at `fps`, at most `maxFrames`: the first frame, then the first
 * frame of each later sampling interval (intervals counted from the first frame). Same rule, same
 * slack (1e-4) as samplingFilter.
 */
export function sampledTimes(times: readonly number[], fps: number, maxFrames: number): number[] {
  const kept: number[] = [];
  if (times.length === 0) return kept;
  const t0 = times[0];
  const bucket = (t: number) => Math.floor((t - t0) * fps + 1e-4);
  let last = Number.NEGATIVE_INFINITY;
  for (const t of times) {
    if (kept.length >= maxFrames) break;
    const b = bucket(t);
    if (b > last) {
      kept.push(t);
      last = b;
    }
  }
  return kept;
}
