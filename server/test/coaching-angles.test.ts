import { describe, expect, it } from 'vitest';
import { AngleStats, frameAngles, measureFrames } from '../pipeline/coaching-angles.js';

/** A COCO-17 skeleton from named points (pixels, y down); unnamed points sit at the origin with score 0. */
function skeleton(
  points: Partial<Record<'ls' | 'rs' | 'lh' | 'rh' | 'lk' | 'rk' | 'la' | 'ra', [number, number]>>,
  score = 0.9,
): number[][] {
  const index = { ls: 5, rs: 6, lh: 11, rh: 12, lk: 13, rk: 14, la: 15, ra: 16 } as const;
  const kps = Array.from({ length: 17 }, () => [0, 0, 0]);
  for (const [name, [x, y]] of Object.entries(points)) kps[index[name as keyof typeof index]] = [x, y, score];
  return kps;
}

const pose = (...args: Parameters<typeof skeleton>) => ({ keypoints: skeleton(...args) });

/** A point at `deg` degrees (0 = +x, 90 = down on screen) and `r` pixels from `from`. */
const polar = (from: [number, number], deg: number, r: number): [number, number] => [
  from[0] + r * Math.cos((deg * Math.PI) / 180),
  from[1] + r * Math.sin((deg * Math.PI) / 180),
];

describe('coaching angles on synthetic skeletons with known angles', () => {
  // An upright rider: shoulders 100 px above the hips, ankles 120 px apart on a level board.
  const upright = {
    ls: [80, 100],
    rs: [120, 100],
    lh: [85, 200],
    rh: [115, 200],
    lk: [80, 300],
    rk: [120, 300],
    la: [40, 400],
    ra: [160, 400],
  } satisfies Record<string, [number, number]>;

  it('straight legs, level lines, upright torso, feet 0.3 torso lengths apart', () => {
    const a = frameAngles(pose({ ...upright, lk: [85, 300], la: [85, 400], rk: [115, 300], ra: [115, 400] }));
    expect(a.kneeFlexionLeft).toBe(0);
    expect(a.kneeFlexionRight).toBe(0);
    expect(a.hipToBoard).toBe(0);
    expect(a.shoulderToBoard).toBe(0);
    expect(a.torsoInclination).toBe(0);
    expect(a.stanceWidth).toBe(0.3); // 30 px apart over a 100 px torso
  });

  it('knee flexion: 90° where the shin is square to the thigh, 45° for a half bend', () => {
    const knee: [number, number] = [100, 300];
    const hip = polar(knee, -90, 100); // thigh straight up
    const a = frameAngles(pose({ lh: hip, lk: knee, la: polar(knee, 0, 100), rh: hip, rk: knee, ra: polar(knee, 45, 100) }));
    expect(a.kneeFlexionLeft).toBe(90);
    expect(a.kneeFlexionRight).toBe(45);
  });

  it('hip and shoulder lines against the board axis, signed (clockwise on screen is positive)', () => {
    const centre: [number, number] = [100, 200];
    const a = frameAngles(
      pose({
        ...upright,
        lh: polar(centre, 180 + 30, 20),
        rh: polar(centre, 30, 20), // the hip line turned 30° clockwise
        ls: polar([100, 100], 180 - 20, 20),
        rs: polar([100, 100], -20, 20), // the shoulder line 20° anticlockwise
      }),
    );
    expect(a.hipToBoard).toBe(30);
    expect(a.shoulderToBoard).toBe(-20);
    // The board turned instead: the same difference, the other sign.
    const b = frameAngles(pose({ ...upright, la: polar([100, 400], 180 + 15, 60), ra: polar([100, 400], 15, 60) }));
    expect(b.hipToBoard).toBe(-15);
  });

  it("with BlazePose's feet, the board axis runs from the middle of one foot (heel, toe) to the other's", () => {
    // Ankles level, but the feet's middles 20° apart from level: the board follows the feet.
    const feet = Array.from({ length: 33 }, () => [0, 0, 0, 0]);
    const left = polar([100, 400], 180 + 20, 70);
    const right = polar([100, 400], 20, 70);
    feet[29] = [left[0] - 10, left[1], 0, 0.9]; // left heel
    feet[31] = [left[0] + 10, left[1], 0, 0.9]; // left toe
    feet[30] = [right[0] - 10, right[1], 0, 0.9];
    feet[32] = [right[0] + 10, right[1], 0, 0.9];
    const a = frameAngles({ keypoints: skeleton(upright), keypoints33: feet });
    expect(a.hipToBoard).toBe(-20);
    // A foot point not trusted: back to the ankle line.
    feet[32][3] = 0.1;
    expect(frameAngles({ keypoints: skeleton(upright), keypoints33: feet }).hipToBoard).toBe(0);
  });

  it('torso inclination: 0 upright, 90 lying, 180 upside down (a flip)', () => {
    const lean = (deg: number) => {
      const hips: [number, number] = [100, 200];
      const s = polar(hips, -90 + deg, 100);
      return frameAngles(pose({ lh: [hips[0] - 15, hips[1]], rh: [hips[0] + 15, hips[1]], ls: [s[0] - 20, s[1]], rs: [s[0] + 20, s[1]] }))
        .torsoInclination;
    };
    expect(lean(0)).toBe(0);
    expect(lean(35)).toBe(35);
    expect(lean(-90)).toBe(90);
    expect(lean(180)).toBe(180);
  });

  it('an angle whose keypoints are not trusted is null; the others are still measured', () => {
    const kps = skeleton(upright);
    kps[14][2] = 0.1; // right knee
    const a = frameAngles({ keypoints: kps });
    expect(a.kneeFlexionRight).toBeNull();
    expect(a.kneeFlexionLeft).not.toBeNull();
    expect(frameAngles(undefined).torsoInclination).toBeNull();
    expect(frameAngles(pose(upright, 0.29)).stanceWidth).toBeNull();
  });

  it('per video: min, mean and max over the frames that have the angle', () => {
    const stats = new AngleStats();
    const knee: [number, number] = [100, 300];
    for (const deg of [0, 30, 60]) {
      stats.add(frameAngles(pose({ lh: polar(knee, -90, 100), lk: knee, la: polar(knee, 90 + deg, 100) })));
    }
    stats.add(frameAngles(undefined));
    const s = stats.summary();
    expect(s.kneeFlexionLeft).toEqual({ min: 0, mean: 30, max: 60, frames: 3 });
    expect(s.torsoInclination).toBeNull();
    const frames = [{ persons: [{ keypoints: skeleton(upright) }] }, { persons: [] }];
    expect(measureFrames(frames).stanceWidth).toEqual({ min: 1.2, mean: 1.2, max: 1.2, frames: 1 });
    expect(frames[1]).toMatchObject({ metrics: { stanceWidth: null } });
  });
});
