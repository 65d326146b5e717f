/**
 * Coaching angles (metrics=true): per frame, from the best person's COCO-17 keypoints in image
 * pixels, each angle only where every keypoint it needs is trusted (score ≥ MIN_KEYPOINT_SCORE;
 * else null); per video, the min / mean / max of each over the frames that have it.
 *
 *   kneeFlexionLeft/Right  180° − the angle hip–knee–ankle: 0 = straight leg, 90 = thigh ⟂ shin
 *   hipToBoard             the signed angle from the board axis to the hip line (left hip → right
 *   shoulderToBoard        hip) / shoulder line, in (−180, 180]: 0 = parallel. The board axis runs
 *                          from the left foot to the right: with BlazePose's 33 points, from the
 *                          middle of the left heel and toe to that of the right (where all four are
 *                          trusted), else from the left ankle to the right ankle
 *   torsoInclination       the angle of the torso (hip centre → shoulder centre) from the image's
 *                          up: 0 = upright, 90 = horizontal, 180 = upside down
 *   stanceWidth            ankle-to-ankle distance over torso length (hip centre → shoulder centre)
 *
 * Image y points down; angles are of the picture as seen (2D), not of the body in 3D.
 */

/** COCO-17 indices. */
const K = { lShoulder: 5, rShoulder: 6, lHip: 11, rHip: 12, lKnee: 13, rKnee: 14, lAnkle: 15, rAnkle: 16 } as const;

/** BlazePose's 33 points (keypoints33, [x, y, z, visibility]): the feet. */
const FEET = { lHeel: 29, rHeel: 30, lToe: 31, rToe: 32 } as const;

/** A keypoint counts only from this score (the page draws keypoints under it hollow). */
export const MIN_KEYPOINT_SCORE = 0.3;

export const ANGLE_NAMES = [
  'kneeFlexionLeft',
  'kneeFlexionRight',
  'hipToBoard',
  'shoulderToBoard',
  'torsoInclination',
  'stanceWidth',
] as const;
export type AngleName = (typeof ANGLE_NAMES)[number];
export type FrameAngles = Record<AngleName, number | null>;
export interface AngleRange {
  min: number;
  mean: number;
  max: number;
  /** Frames the angle was measured in. */
  frames: number;
}
export type VideoAngles = Record<AngleName, AngleRange | null>;

type Point = readonly number[]; // [x, y, score, ...]

const DEG = 180 / Math.PI;
const round = (x: number) => Math.round(x * 10) / 10;
const round2 = (x: number) => Math.round(x * 100) / 100;

/** The best person's points: COCO-17 `keypoints`, and BlazePose's `keypoints33` where the model gives them. */
export interface PosePoints {
  keypoints: readonly Point[];
  keypoints33?: readonly Point[];
}

export function frameAngles(person: PosePoints | undefined, minScore = MIN_KEYPOINT_SCORE): FrameAngles {
  const keypoints = person?.keypoints;
  const at = (i: number): Point | null => {
    const p = keypoints?.[i];
    return p && p[2] >= minScore ? p : null;
  };
  const need = (indices: number[], f: (...p: Point[]) => number): number | null => {
    const points = indices.map(at);
    if (points.some((p) => p === null)) return null;
    const v = f(...(points as Point[]));
    return Number.isFinite(v) ? v : null;
  };
  const mid = (a: Point, b: Point): Point => [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2];
  const flexion = (hip: Point, knee: Point, ankle: Point) =>
    round(180 - between([hip[0] - knee[0], hip[1] - knee[1]], [ankle[0] - knee[0], ankle[1] - knee[1]]));
  // The board axis: the feet's middles (heel and toe) where BlazePose gives them, else the ankles (la, ra).
  const feet = boardFeet(person?.keypoints33, minScore);
  const toBoard = (a: Point, b: Point, la: Point, ra: Point) => {
    const [l, r] = feet ?? [la, ra];
    return round(signed([r[0] - l[0], r[1] - l[1]], [b[0] - a[0], b[1] - a[1]]));
  };
  return {
    kneeFlexionLeft: need([K.lHip, K.lKnee, K.lAnkle], flexion),
    kneeFlexionRight: need([K.rHip, K.rKnee, K.rAnkle], flexion),
    hipToBoard: need([K.lHip, K.rHip, K.lAnkle, K.rAnkle], toBoard),
    shoulderToBoard: need([K.lShoulder, K.rShoulder, K.lAnkle, K.rAnkle], toBoard),
    torsoInclination: need([K.lHip, K.rHip, K.lShoulder, K.rShoulder], (lh, rh, ls, rs) => {
      const hip = mid(lh, rh);
      const shoulder = mid(ls, rs);
      return round(between([shoulder[0] - hip[0], shoulder[1] - hip[1]], [0, -1]));
    }),
    stanceWidth: need([K.lHip, K.rHip, K.lShoulder, K.rShoulder, K.lAnkle, K.rAnkle], (lh, rh, ls, rs, la, ra) => {
      const torso = length(mid(lh, rh), mid(ls, rs));
      return torso > 0 ? round2(length(la, ra) / torso) : Number.NaN;
    }),
  };
}

/** Each foot's middle (heel and toe), left then right, where all four points are trusted. */
function boardFeet(points: readonly Point[] | undefined, minScore: number): [Point, Point] | null {
  const p = (i: number) => {
    const k = points?.[i];
    // keypoints33 rows are [x, y, z, visibility].
    return k && k[3] >= minScore ? k : null;
  };
  const [lh, rh, lt, rt] = [p(FEET.lHeel), p(FEET.rHeel), p(FEET.lToe), p(FEET.rToe)];
  if (!lh || !rh || !lt || !rt) return null;
  return [
    [(lh[0] + lt[0]) / 2, (lh[1] + lt[1]) / 2],
    [(rh[0] + rt[0]) / 2, (rh[1] + rt[1]) / 2],
  ];
}

/** The unsigned angle between two vectors, in degrees (0..180). */
function between(u: readonly number[], v: readonly number[]): number {
  const n = Math.hypot(u[0], u[1]) * Math.hypot(v[0], v[1]);
  if (n === 0) return Number.NaN;
  return Math.acos(Math.max(-1, Math.min(1, (u[0] * v[0] + u[1] * v[1]) / n))) * DEG;
}

/** The signed angle from u to v, in degrees, in (−180, 180] (positive: clockwise on screen, y down). */
function signed(u: readonly number[], v: readonly number[]): number {
  if (Math.hypot(u[0], u[1]) === 0 || Math.hypot(v[0], v[1]) === 0) return Number.NaN;
  const a = Math.atan2(u[0] * v[1] - u[1] * v[0], u[0] * v[0] + u[1] * v[1]) * DEG;
  return a === -180 ? 180 : a;
}

function length(a: Point, b: Point): number {
  return Math.hypot(a[0] - b[0], a[1] - b[1]);
}

/** Coaching angles of frames already in hand (in place), and their ranges. */
export function measureFrames(frames: { persons: PosePoints[]; metrics?: FrameAngles }[]): VideoAngles {
  const stats = new AngleStats();
  for (const f of frames) {
    f.metrics = frameAngles(f.persons[0]);
    stats.add(f.metrics);
  }
  return stats.summary();
}

/** Per-video ranges, added to frame by frame (nothing kept per frame). */
export class AngleStats {
  private readonly sums = new Map<AngleName, { min: number; max: number; sum: number; n: number }>();

  add(angles: FrameAngles): void {
    for (const name of ANGLE_NAMES) {
      const v = angles[name];
      if (v === null) continue;
      const s = this.sums.get(name) ?? { min: v, max: v, sum: 0, n: 0 };
      s.min = Math.min(s.min, v);
      s.max = Math.max(s.max, v);
      s.sum += v;
      s.n += 1;
      this.sums.set(name, s);
    }
  }

  summary(): VideoAngles {
    const out = {} as VideoAngles;
    for (const name of ANGLE_NAMES) {
      const s = this.sums.get(name);
      if (!s) {
        out[name] = null;
        continue;
      }
      const mean = name === 'stanceWidth' ? round2(s.sum / s.n) : round(s.sum / s.n);
      out[name] = { min: s.min, mean, max: s.max, frames: s.n };
    }
    return out;
  }
}
