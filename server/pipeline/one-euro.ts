/**
 * One-euro smoothing of keypoints over time, as tfjs-models' MoveNet applies it: on coordinates
 * normalised to the frame (0..1), object scale 1, scores unfiltered, the filter reset whenever a
 * frame has no person. Constants are tfjs-models' KEYPOINT_FILTER_CONFIG for MoveNet.
 *
 * It runs in the server over the frames in time order, because a video's batches are posed in
 * parallel by several workers and only the server sees the whole sequence.
 */
import type { Keypoint, Person } from '../../protocol/index.js';

export interface OneEuroConfig {
  frequency: number;
  minCutOff: number;
  beta: number;
  derivateCutOff: number;
  thresholdCutOff: number;
  thresholdBeta: number;
}

export const MOVENET_ONE_EURO: OneEuroConfig = {
  frequency: 30,
  minCutOff: 2.5,
  beta: 300,
  derivateCutOff: 2.5,
  thresholdCutOff: 0.5,
  thresholdBeta: 5,
};

class LowPassFilter {
  private initialized = false;
  private raw = 0;
  private stored = 0;

  apply(value: number, alpha: number, threshold?: number): number {
    let result: number;
    if (!this.initialized) {
      result = value;
      this.initialized = true;
    } else if (threshold === undefined) {
      result = this.stored + alpha * (value - this.stored);
    } else {
      result = this.stored + alpha * threshold * Math.asinh((value - this.stored) / threshold);
    }
    this.raw = value;
    this.stored = result;
    return result;
  }

  lastRaw(): number | undefined {
    return this.initialized ? this.raw : undefined;
  }
}

export class OneEuroFilter {
  private frequency: number;
  private readonly x = new LowPassFilter();
  private readonly dx = new LowPassFilter();
  private lastUs = 0;

  constructor(private readonly config: OneEuroConfig) {
    this.frequency = config.frequency;
  }

  /** value at time `us` (microseconds, increasing). */
  apply(value: number, us: number): number {
    const t = Math.trunc(us);
    if (this.lastUs >= t && this.lastUs !== 0) return value;
    if (this.lastUs !== 0 && t !== 0) this.frequency = 1 / ((t - this.lastUs) * 1e-6);
    this.lastUs = t;
    const last = this.x.lastRaw();
    const dValue = last === undefined ? 0 : (value - last) * this.frequency;
    const edValue = this.dx.apply(dValue, this.alpha(this.config.derivateCutOff));
    const cutOff = this.config.minCutOff + this.config.beta * Math.abs(edValue);
    const threshold = this.config.thresholdCutOff + this.config.thresholdBeta * Math.abs(edValue);
    return this.x.apply(value, this.alpha(cutOff), threshold);
  }

  private alpha(cutOff: number): number {
    const te = 1 / this.frequency;
    const tau = 1 / (2 * Math.PI * cutOff);
    return 1 / (1 + tau / te);
  }
}

/** Smooths the first person's keypoints across frames; resets when a frame has no person. */
export class KeypointSmoother {
  private filters: { x: OneEuroFilter; y: OneEuroFilter }[] | null = null;

  constructor(
    private readonly width: number,
    private readonly height: number,
    private readonly config: OneEuroConfig = MOVENET_ONE_EURO,
  ) {}

  apply(persons: Person[], timeMs: number): Person[] {
    if (persons.length !== 1) {
      this.filters = null;
      return persons;
    }
    const [person] = persons;
    let filters = this.filters;
    if (!filters || filters.length !== person.keypoints.length) {
      filters = person.keypoints.map(() => ({ x: new OneEuroFilter(this.config), y: new OneEuroFilter(this.config) }));
      this.filters = filters;
    }
    // tfjs-models feeds microseconds; +1 keeps t=0 from meaning "no previous timestamp".
    const us = timeMs * 1000 + 1;
    const keypoints = person.keypoints.map(([x, y, s], i): Keypoint => {
      const f = filters[i];
      return [f.x.apply(x / this.width, us) * this.width, f.y.apply(y / this.height, us) * this.height, s];
    });
    return [{ ...person, keypoints }];
  }
}
