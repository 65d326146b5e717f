/**
 * Frames come back batch by batch, and batches out of order; a frame is final once it and every
 * frame before it are back. Smoothing (one-euro) is causal: it needs the frames before a frame,
 * never after, so a final frame is smoothed at once and never changes again. Final frames go to
 * the sink in order, one call at a time; the pipeline waits for the sink before it decodes more
 * (a slow reader slows the pipeline; nothing piles up in between).
 */
import type { VideoInfo } from '../media/probe.js';
import { AngleStats, frameAngles, type VideoAngles } from './coaching-angles.js';
import { KeypointSmoother } from './one-euro.js';
import type { TimedFrameResult } from './pose-video.js';

export interface FrameTally {
  sampled: number;
  withPose: number;
  failed: number;
}

export type FrameSink = (frames: TimedFrameResult[]) => Promise<void> | void;

/** The tally of frames already in hand. */
export function tallyOf(frames: readonly TimedFrameResult[]): FrameTally {
  return {
    sampled: frames.length,
    withPose: frames.filter((f) => f.persons.length > 0).length,
    failed: frames.filter((f) => f.error).length,
  };
}

export class FinalFrames {
  /** The first frame not yet final. */
  private next = 0;
  private readonly smoother: KeypointSmoother | null;
  private pending: Promise<void> = Promise.resolve();
  private readonly stats = new AngleStats();

  constructor(
    /** The pipeline's frames by index (holes: not back yet). */
    private readonly frames: (TimedFrameResult | undefined)[],
    private readonly o: {
      smoothing: boolean;
      metrics: boolean;
      video: Pick<VideoInfo, 'width' | 'height'>;
      sink?: FrameSink;
      keep: boolean;
    },
  ) {
    this.smoother = o.smoothing ? new KeypointSmoother(o.video.width, o.video.height) : null;
  }

  /** Frames final so far: how many, with a person, with an error. */
  readonly tally: FrameTally = { sampled: 0, withPose: 0, failed: 0 };

  get count(): number {
    return this.next;
  }

  /** After frames were filled in: the newly final ones are smoothed and handed to the sink. */
  advance(): void {
    const out: TimedFrameResult[] = [];
    for (let f = this.frames[this.next]; f; f = this.frames[this.next]) {
      if (this.smoother) f.persons = this.smoother.apply(f.persons, f.timeMs);
      if (this.o.metrics) {
        f.metrics = frameAngles(f.persons[0]);
        this.stats.add(f.metrics);
      }
      out.push(f);
      this.tally.sampled += 1;
      if (f.persons.length > 0) this.tally.withPose += 1;
      if (f.error) this.tally.failed += 1;
      // Not kept: the frame lives until the sink is done with it, not until the video is.
      if (!this.o.keep) this.frames[this.next] = undefined;
      this.next += 1;
    }
    const { sink } = this.o;
    if (out.length > 0 && sink) this.pending = this.pending.then(() => sink(out));
  }

  /** Each coaching angle's range over the final frames (metrics). */
  angles(): VideoAngles {
    return this.stats.summary();
  }

  /** Resolves once the sink has taken every final frame (rejects with the sink's error). */
  drained(): Promise<void> {
    return this.pending;
  }
}
