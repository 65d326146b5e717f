/**
 * Short clips through the real server and a real model (MoveNet Lightning): a one-frame video and a
 * still photo wrapped as a one-frame video each give their frame, at t = 0, posed.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeIfReady, whyNoRealWorkers } from '../../../workers/test/support/prerequisites.js';
import { FIXTURES, IMAGES, startTestServer, type TestServer, upload, videoForm, waitReady } from '../support/test-server.js';
import { findTools } from '../support/tools.js';

const scratch = mkdtempSync(path.join(os.tmpdir(), 'posepool-short-clips-'));
let server: TestServer | undefined;
afterAll(async () => {
  await server?.close();
  rmSync(scratch, { recursive: true, force: true });
});

describeIfReady('short clips (real model)', whyNoRealWorkers(), () => {
  const { ffmpeg } = findTools();
  const h264 = (name: string, input: string[]) => {
    const file = path.join(scratch, name);
    execFileSync(ffmpeg, [
      '-v',
      'error',
      '-y',
      ...input,
      '-frames:v',
      '1',
      '-c:v',
      'libx264',
      '-pix_fmt',
      'yuv420p',
      '-vf',
      'scale=trunc(iw/2)*2:trunc(ih/2)*2',
      file,
    ]);
    return file;
  };

  beforeAll(async () => {
    server = await startTestServer({ POSE_MODEL: 'movenet-lightning', POSE_WORKERS: '1' });
    await waitReady(server.url, 120_000);
  }, 130_000);

  for (const [name, input] of [
    ['a one-frame H.264 clip', () => h264('one-frame.mp4', ['-i', path.join(FIXTURES, 'messi-pan.mp4')])],
    ['a still photo wrapped as a one-frame video', () => h264('still.mp4', ['-loop', '1', '-i', path.join(IMAGES, 'messi5.jpg')])],
  ] as const) {
    for (const fps of ['10', '60', '1']) {
      it(`${name}, fps=${fps}: 200 with its one frame at t = 0, posed`, async () => {
        const res = await upload(server!.url, videoForm(input(), { fps }));
        expect(res.status, res.text).toBe(200);
        expect(res.json.frames).toHaveLength(1);
        expect(res.json.frames[0]).toMatchObject({ index: 0, timeMs: 0 });
        expect(res.json.frames[0].error).toBeUndefined();
        expect(res.json.frames[0].persons).toHaveLength(1);
        expect(res.json.frames[0].persons[0].score).toBeGreaterThan(0.3);
        expect(res.json.summary).toMatchObject({ framesSampled: 1, framesWithPose: 1, framesFailed: 0 });
      });
    }
  }
});
