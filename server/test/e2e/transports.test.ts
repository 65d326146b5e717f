/**
 * Every frame transport (POSE_TRANSPORT) end to end through real HTTP and a real worker (the
 * synthetic test double, whose keypoint scores are read off the pixels): the same frames arrive
 * upright and whole whichever way they travel, and no frame file outlives its request.
 */
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type FrameEncoding, PROTOCOL } from '../../../protocol/index.js';
import { FIXTURES, startTestServer, type TestServer, tempDirs, upload, videoForm, waitReady } from '../support/test-server.js';

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** Per frame, the 17 keypoint scores the synthetic backend read off the image. */
async function scoresWith(transport: FrameEncoding): Promise<number[][]> {
  server = await startTestServer({ POSE_TRANSPORT: transport, POSE_WORKERS: '1', POSE_BATCH_SIZE: '4' });
  await waitReady(server.url);
  const before = tempDirs().length;
  // A clip with rotation metadata: raw transports must use the upright size (342x548), not the coded one.
  const res = await upload(server.url, videoForm(path.join(FIXTURES, 'messi-rot90.mp4'), { maxFrames: '6', fps: '10' }));
  expect(res.status).toBe(200);
  expect(res.json.video).toMatchObject({ width: 342, height: 548 });
  expect(res.json.frames).toHaveLength(6);
  for (const f of res.json.frames) {
    expect(f.error).toBeUndefined();
    expect(f.persons).toHaveLength(1);
  }
  expect(tempDirs().length).toBe(before);
  await server.close();
  server = undefined;
  return res.json.frames.map((f) => f.persons[0].keypoints.map((k) => k[2]));
}

function maxDiff(a: number[][], b: number[][]): number {
  return Math.max(...a.flatMap((row, i) => row.map((v, j) => Math.abs(v - b[i][j]))));
}

describe('frame transports', () => {
  it('every protocol encoding is a transport the server can use', () => {
    expect([...PROTOCOL.frameEncodings].sort()).toEqual(['file', 'jpeg', 'rgb24', 'rgb24-file']);
  });

  it('carry the same upright frames: raw pixels identical, JPEG within its compression error', async () => {
    const got = {} as Record<FrameEncoding, number[][]>;
    for (const transport of PROTOCOL.frameEncodings) got[transport] = await scoresWith(transport);
    expect(maxDiff(got.rgb24, got['rgb24-file'])).toBe(0);
    expect(maxDiff(got.jpeg, got.file)).toBe(0);
    expect(maxDiff(got.jpeg, got['rgb24-file'])).toBeLessThan(0.05);
    // the scores do depend on the pixels (frames differ), so the comparisons above are not vacuous
    expect(maxDiff([got['rgb24-file'][0]], [got['rgb24-file'][5]])).toBeGreaterThan(0);
  }, 120_000);
});
