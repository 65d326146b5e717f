/**
 * A durable job's final frames as they appear in POSE_STORAGE_DIR, for a reader on any replica:
 * each segment's batch checkpoints in order (then its frames file once it is posed, then the merged
 * result once the job is done), smoothed here exactly as the merge smooths them (one-euro is causal:
 * frame i needs frames 0..i only) and numbered as the result numbers them.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { frameAngles } from '../pipeline/coaching-angles.js';
import { KeypointSmoother } from '../pipeline/one-euro.js';
import { type PoseResponse, publicFrame } from '../pipeline/pose-response.js';
import type { TimedFrameResult } from '../pipeline/pose-video.js';
import type { JobFramesChunk, JobSummary } from './job.js';
import type { JobStorage } from './job-storage.js';
import type { DurableJobData } from './redis-runs.js';

/** How often a reader looks for the next batch while the job runs. */
const POLL_MS = 250;

export async function* storedFrames(o: {
  storage: JobStorage;
  id: string;
  data: DurableJobData;
  from: number;
  signal: AbortSignal;
  /** The job's end once it has ended; null while it runs (or while that cannot be told). */
  ended: () => Promise<JobSummary | null>;
}): AsyncGenerator<JobFramesChunk> {
  const { storage, id, data, signal } = o;
  const smoother = data.fields.smoothing ? new KeypointSmoother(data.video.width, data.video.height) : null;
  /** The next frame's index in the result (frames before `from` are smoothed, not sent). */
  let next = 0;
  const take = (frames: readonly TimedFrameResult[]): PoseResponse['frames'] => {
    const out: PoseResponse['frames'] = [];
    for (const f of frames) {
      const persons = smoother ? smoother.apply(f.persons, f.timeMs) : f.persons;
      const metrics = data.fields.metrics ? { metrics: frameAngles(persons[0]) } : {};
      if (next >= o.from) out.push(publicFrame({ ...f, index: next, persons, ...metrics }));
      next += 1;
    }
    return out;
  };

  let k = 0;
  let n = 0;
  let first = 0; // the index of segment k's first frame
  while (!signal.aborted) {
    // Done: the merged result has every frame, smoothed.
    const result = await storage.readResult(id);
    if (result !== undefined) {
      const frames = (JSON.parse(result) as PoseResponse).frames;
      for (let i = Math.max(next, o.from); i < frames.length; i += 256) yield { frames: frames.slice(i, i + 256) };
      const end = await o.ended();
      if (end) yield { end };
      return;
    }
    if (k < data.segments.length) {
      const segment = await storage.readSegment(id, k);
      if (segment) {
        const chunk = take(segment.frames.slice(next - first));
        if (chunk.length > 0) yield { frames: chunk };
        first += segment.frames.length;
        next = first;
        k += 1;
        n = 0;
        continue;
      }
      const batch = await storage.readBatch(id, k, n);
      if (batch) {
        const chunk = take(batch);
        if (chunk.length > 0) yield { frames: chunk };
        n += 1;
        continue;
      }
    }
    const end = await o.ended();
    if (end && end.state !== 'succeeded') {
      yield { end };
      return;
    }
    await sleep(POLL_MS, undefined, { signal }).catch(() => {});
  }
}
