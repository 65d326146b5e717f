/**
 * Upload → frames → batches → real Python workers (the synthetic test double) → response, through
 * real HTTP. The bad-input cases check the contract's codes, that the server stays ready, and
 * that no temporary directory survives.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES, IMAGES, startTestServer, type TestServer, tempDirs, upload, videoForm, waitReady } from '../support/test-server.js';

let server: TestServer;
const scratch = mkdtempSync(path.join(os.tmpdir(), 'e2e-scratch-'));

beforeAll(async () => {
  server = await startTestServer({ POSE_WORKERS: '2', MAX_UPLOAD_MB: '1', POSE_BATCH_SIZE: '4' });
  await waitReady(server.url);
});
afterAll(async () => {
  await server?.close();
  rmSync(scratch, { recursive: true, force: true });
});

describe('POST /api/upload-video-with-pose (synthetic backend)', () => {
  it('answers the old client call with one result per sampled frame, in order', async () => {
    const before = tempDirs().length;
    const res = await upload(server.url, videoForm(path.join(FIXTURES, 'messi-pan.mp4'), { role: 'rider' }));
    expect(res.status).toBe(200);
    const body = res.json;
    expect(body.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(body.role).toBe('rider');
    expect(body.video).toMatchObject({ width: 548, height: 342, fps: 30, rotation: 0, codec: 'h264' });
    expect(body.model).toMatchObject({ name: 'synthetic', device: 'cpu' });
    expect(body.model.keypoints).toHaveLength(17);
    expect(body.frames.length).toBeGreaterThanOrEqual(19);
    expect(body.frames.length).toBeLessThanOrEqual(21);
    body.frames.forEach((f, i) => {
      expect(f.index).toBe(i);
      expect(f.timeMs).toBe(i * 100);
      expect(f.error).toBeUndefined();
      expect(f.persons).toHaveLength(1);
      expect(f.persons[0].keypoints).toHaveLength(17);
      for (const [x, y, s] of f.persons[0].keypoints) {
        expect(x).toBeGreaterThanOrEqual(0);
        expect(x).toBeLessThanOrEqual(548);
        expect(y).toBeGreaterThanOrEqual(0);
        expect(y).toBeLessThanOrEqual(342);
        expect(s).toBeGreaterThanOrEqual(0);
        expect(s).toBeLessThanOrEqual(1);
      }
    });
    expect(body.summary).toMatchObject({ framesSampled: body.frames.length, framesWithPose: body.frames.length, framesFailed: 0 });
    expect(server.logs.some((l) => l.includes(`Submitting ${body.frames.length} frames`) || l.includes('Submitting '))).toBe(true);
    expect(server.logs.some((l) => l.includes(`processed ${body.frames.length}/${body.frames.length} frames`))).toBe(true);
    expect(res.headers.get('x-request-id')).toBe(body.id);
    expect(tempDirs().length).toBe(before);
  });

  it('honours fps and maxFrames, and puts coordinates in the upright frame of a rotated clip', async () => {
    const res = await upload(server.url, videoForm(path.join(FIXTURES, 'messi-rot90.mp4'), { fps: '5', maxFrames: '3' }));
    expect(res.status).toBe(200);
    expect(res.json.video).toMatchObject({ width: 342, height: 548 });
    expect(res.json.frames).toHaveLength(3);
    for (const f of res.json.frames) {
      for (const [x, y] of f.persons[0].keypoints) {
        expect(x).toBeLessThanOrEqual(342);
        expect(y).toBeLessThanOrEqual(548);
      }
    }
  });

  it('caps fps at the source rate', async () => {
    const res = await upload(server.url, videoForm(path.join(FIXTURES, 'vtest-3s.mp4'), { fps: '30' }));
    expect(res.status).toBe(200);
    expect(res.json.summary.sampleFps).toBe(10);
    expect(res.json.frames.length).toBeGreaterThanOrEqual(29);
    expect(res.json.frames.length).toBeLessThanOrEqual(31);
  });
});

describe('bad input gets the contract code, leaves the server ready and no temp files', () => {
  const cases: [string, () => FormData | string, number, string, Record<string, string>?][] = [
    [
      'no video field',
      () => {
        const f = new FormData();
        f.append('role', 'rider');
        return f;
      },
      400,
      'MISSING_VIDEO',
    ],
    ['a still image', () => videoForm(path.join(IMAGES, 'messi5.jpg'), {}, 'photo.jpg'), 415, 'NOT_A_VIDEO'],
    [
      'a zero-byte file',
      () => {
        const f = new FormData();
        f.append('video', new Blob([]), 'empty.mp4');
        return f;
      },
      415,
      'NOT_A_VIDEO',
    ],
    [
      'a truncated MP4',
      () => {
        const full = readFileSync(path.join(FIXTURES, 'messi-pan.mp4'));
        const f = new FormData();
        f.append('video', new Blob([full.subarray(0, 30_000)]), 'cut.mp4');
        return f;
      },
      422,
      'UNDECODABLE_VIDEO',
    ],
    [
      'a body over MAX_UPLOAD_MB',
      () => {
        const f = new FormData();
        f.append('video', new Blob([Buffer.alloc(1_500_000, 1)]), 'big.mp4');
        return f;
      },
      413,
      'UPLOAD_TOO_LARGE',
    ],
    ['a bad role', () => videoForm(path.join(FIXTURES, 'messi-pan.mp4'), { role: 'Robert; DROP TABLE' }), 400, 'BAD_FIELD'],
    ['a bad fps', () => videoForm(path.join(FIXTURES, 'messi-pan.mp4'), { fps: '-3' }), 400, 'BAD_FIELD'],
    ['a bad maxFrames', () => videoForm(path.join(FIXTURES, 'messi-pan.mp4'), { maxFrames: '999999999' }), 400, 'BAD_FIELD'],
    [
      'two video fields',
      () => {
        const f = videoForm(path.join(FIXTURES, 'messi-pan.mp4'));
        f.append('video', new Blob([readFileSync(path.join(FIXTURES, 'messi-pan.mp4'))]), 'second.mp4');
        return f;
      },
      400,
      'BAD_FIELD',
    ],
    ['a non-multipart body', () => 'just text', 400, 'MISSING_VIDEO', { 'content-type': 'text/plain' }],
    [
      'a path-traversal file name',
      () => videoForm(path.join(FIXTURES, 'messi-pan.mp4'), { maxFrames: '2' }, '../../etc/passwd; rm -rf $(HOME).mp4'),
      200,
      '',
    ],
  ];

  it.each(cases)('%s', async (_name, body, status, code, headers) => {
    const before = tempDirs().length;
    const res = await upload(server.url, body(), headers);
    expect(res.status, res.text).toBe(status);
    if (code) {
      expect(res.json.error.code).toBe(code);
      expect(typeof res.json.error.message).toBe('string');
      expect(res.json.error.requestId).toBeTruthy();
      expect(res.text).not.toMatch(/\/tmp\/|\/work\/|at .*\.js:\d+/);
    }
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    expect(tempDirs().length).toBe(before);
  });

  it('answers 404 as JSON for unknown routes', async () => {
    const res = await fetch(`${server.url}/nope`);
    expect(res.status).toBe(404);
    expect((await res.json()).error.code).toBe('NOT_FOUND');
  });

  it('keeps /health/live up', async () => {
    const res = await fetch(`${server.url}/health/live`);
    expect(res.status).toBe(200);
  });
});
