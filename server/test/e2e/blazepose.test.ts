/**
 * BlazePose through the real server and a real worker (blazepose-lite): the response keeps the contract
 * (COCO-17 keypoints) and adds the declared extras, which the server checks against protocol.json's schemas
 * (a body that broke them would be a 500), with model.extras naming the 33 keypoints.
 */
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { PROTOCOL } from '../../../protocol/index.js';
import { describeIfReady, whyNoRealWorkers } from '../../../workers/test/support/prerequisites.js';
import { FIXTURES, startTestServer, type TestServer, upload, videoForm, waitReady } from '../support/test-server.js';

let server: TestServer | undefined;
afterAll(async () => {
  await server?.close();
});

describeIfReady('BlazePose end to end (real model)', whyNoRealWorkers(), () => {
  beforeAll(async () => {
    server = await startTestServer({ POSE_MODEL: 'blazepose-lite', POSE_WORKERS: '1' });
    await waitReady(server.url, 180_000);
  }, 190_000);

  for (const tracking of ['true', 'false']) {
    it(`a video, tracking=${tracking}: every frame posed with COCO-17 keypoints, 33 keypoints and world coordinates`, async () => {
      const res = await upload(server!.url, videoForm(path.join(FIXTURES, 'messi-pan.mp4'), { fps: '10', tracking }));
      expect(res.status, res.text).toBe(200);
      const body = res.json as unknown as {
        model: { name: string; keypoints: string[]; extras?: Record<string, { keypoints?: string[] }> };
        frames: { persons: { keypoints: number[][]; keypoints33: number[][]; worldKeypoints33: number[][] }[] }[];
      };
      expect(body.model.name).toBe('blazepose-lite');
      expect(body.model.keypoints).toEqual(PROTOCOL.keypointSets.coco17.names);
      expect(Object.keys(body.model.extras ?? {})).toEqual(['keypoints33', 'worldKeypoints33']);
      expect(body.model.extras?.keypoints33.keypoints).toEqual(PROTOCOL.keypointSets.blazepose33.names);
      expect(body.frames).toHaveLength(20);
      for (const frame of body.frames) {
        expect(frame.persons).toHaveLength(1);
        const [p] = frame.persons;
        expect(p.keypoints).toHaveLength(17);
        expect(p.keypoints33).toHaveLength(33);
        expect(p.worldKeypoints33).toHaveLength(33);
        expect(p.keypoints33.every((k) => k.length === 4) && p.worldKeypoints33.every((k) => k.length === 3)).toBe(true);
      }
    }, 120_000);
  }
});
