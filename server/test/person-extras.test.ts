/**
 * Per-person extras (protocol.json personExtras): the response schema checks each declared field, and the
 * response's model.extras describes them (BlazePose's 33 keypoint names come from keypointSets.blazepose33).
 */
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { MODEL_NAMES, PERSON_EXTRAS, PROTOCOL } from '../../protocol/index.js';
import { poseResponseSchema } from '../api-schemas.js';
import { describeExtras } from '../pipeline/pose-response.js';

const kp33 = (n = 33) => Array.from({ length: n }, (_, i) => [i, i + 1, -0.5 * i, 0.9]);
const world33 = (n = 33) => Array.from({ length: n }, (_, i) => [0.01 * i, -0.02 * i, 0.1]);

function body(person: Record<string, unknown>, model: Record<string, unknown> = {}) {
  return {
    id: 'x',
    role: 'rider',
    video: { width: 548, height: 342, durationMs: 100, fps: 10, rotation: 0, codec: 'h264' },
    model: { name: 'blazepose-full', device: 'cpu', keypoints: PROTOCOL.keypointSets.coco17.names, skeleton: [[0, 1]], ...model },
    frames: [{ index: 0, timeMs: 0, persons: [{ score: 0.9, bbox: [1, 2, 3, 4], keypoints: [[1, 2, 0.9]], ...person }] }],
    summary: { framesSampled: 1, framesWithPose: 1, framesFailed: 0, sampleFps: 10, elapsedMs: 5 },
  };
}

describe('per-person extras', () => {
  const validate = new Ajv({ strict: false }).compile(poseResponseSchema);

  it('every model lists only declared extras', () => {
    for (const name of MODEL_NAMES) {
      for (const extra of PROTOCOL.models[name].extras ?? []) expect(PERSON_EXTRAS[extra], `${name}: ${extra}`).toBeDefined();
    }
    expect(PROTOCOL.models['blazepose-heavy'].extras).toEqual(['keypoints33', 'worldKeypoints33']);
    expect(PROTOCOL.keypointSets.blazepose33.names).toHaveLength(33);
  });

  it("the response schema checks BlazePose's keypoints33 and worldKeypoints33", () => {
    const extras = describeExtras(['keypoints33', 'worldKeypoints33']);
    expect(validate(body({ keypoints33: kp33(), worldKeypoints33: world33() }, { extras }))).toBe(true);
    expect(validate(body({ keypoints33: kp33(32) }))).toBe(false);
    expect(validate(body({ keypoints33: kp33().map((p) => p.slice(0, 3)) }))).toBe(false);
    expect(validate(body({ worldKeypoints33: world33().map((p) => [...p, 1]) }))).toBe(false);
    expect(validate(body({ boxSource: 'movenet' }))).toBe(true);
    expect(validate(body({ boxSource: 'elsewhere' }))).toBe(false);
    expect(validate(body({ somethingNew: 1 }))).toBe(true); // undeclared fields are not refused
  });

  it('model.extras names the 33 keypoints and their skeleton', () => {
    const extras = describeExtras(['keypoints33', 'worldKeypoints33', 'notDeclared']);
    expect(Object.keys(extras)).toEqual(['keypoints33', 'worldKeypoints33']);
    expect(extras.keypoints33.keypoints).toEqual(PROTOCOL.keypointSets.blazepose33.names);
    expect(extras.keypoints33.keypoints?.slice(29)).toEqual(['left_heel', 'right_heel', 'left_foot_index', 'right_foot_index']);
    expect(extras.worldKeypoints33.description).toMatch(/metres/);
    expect(describeExtras(['boxSource']).boxSource.keypoints).toBeUndefined();
  });
});
