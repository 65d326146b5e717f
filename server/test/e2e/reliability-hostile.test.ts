/**
 * Hostile clients and hostile media against the real server (real Python workers, the `synthetic`
 * TEST DOUBLE model). Slow-loris uploads that trickle or stall their body each get 408
 * UPLOAD_TIMEOUT with the connection closed and their files removed, and honest uploads keep getting
 * 200 in bounded time meanwhile (a body is received before it asks for a processing slot). A pixel
 * bomb is refused at probe, before any decode.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pixelBomb } from '../../../scripts/soak.js';
import { extractFrames, type FrameSourceOptions } from '../../media/frame-source.js';
import { probeVideo } from '../../media/probe.js';
import type { ErrorBody } from '../support/api-bodies.js';
import { BOUNDARY, childrenOf, fdsInto, getHealth, multipartHead, procFigures, sleep } from '../support/reliability.js';
import { FIXTURES, startTestServer, type TestServer, upload, videoForm, waitFor } from '../support/test-server.js';
import { findTools } from '../support/tools.js';

const CLIP = path.join(FIXTURES, 'messi-pan.mp4');
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({
    POSE_WORKERS: '2',
    POSE_BATCH_SIZE: '4',
    MAX_ACTIVE_VIDEOS: '2',
    MAX_QUEUED_VIDEOS: '1',
    REQUEST_TIMEOUT_MS: '5000',
    UPLOAD_MIN_BYTES_PER_S: '2048',
    UPLOAD_RATE_WINDOW_MS: '1000',
  });
  await waitFor(async () => (await getHealth(server.url)).status === 'ready', 90_000, 100);
});
afterAll(async () => {
  await server?.close();
});

interface SlowClient {
  /** The status line and body the server sent, once it answered; null if it closed without one. */
  answer: Promise<{ status: number | null; body: string; closedMs: number }>;
  stop(): void;
}

/** A raw client that sends the headers and the start of a multipart body, then `bytesPerTick` every `tickMs` (0: nothing). */
function slowClient(url: string, bytesPerTick: number, tickMs = 500): SlowClient {
  const { port } = new URL(url);
  const socket = net.connect(Number(port), '127.0.0.1');
  const head = multipartHead({ role: 'rider' });
  socket.write(
    `POST /api/upload-video-with-pose HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=${BOUNDARY}\r\n` +
      `Content-Length: ${head.length + 1_000_000}\r\n\r\n`,
  );
  socket.write(head);
  const t0 = Date.now();
  const ticker = setInterval(() => {
    if (bytesPerTick > 0 && !socket.destroyed) socket.write(Buffer.alloc(bytesPerTick, 0x5a));
  }, tickMs);
  let received = '';
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => (received += d));
  socket.on('error', () => undefined);
  const answer = new Promise<{ status: number | null; body: string; closedMs: number }>((resolve) => {
    socket.once('close', () => {
      clearInterval(ticker);
      const status = /^HTTP\/1\.1 (\d{3})/.exec(received);
      resolve({
        status: status ? Number(status[1]) : null,
        body: received.split('\r\n\r\n').slice(1).join('\r\n\r\n'),
        closedMs: Date.now() - t0,
      });
    });
  });
  return {
    answer,
    stop: () => {
      clearInterval(ticker);
      socket.destroy();
    },
  };
}

const requestDirs = () => readdirSync(server.config.tempDir);

describe('slow uploads (slow loris)', () => {
  it('a body that trickles (1 byte per 500 ms) or stalls gets 408 UPLOAD_TIMEOUT, its connection closed and its files gone', async () => {
    const trickle = slowClient(server.url, 1);
    const stalled = slowClient(server.url, 0);
    for (const client of [trickle, stalled]) {
      const a = await client.answer;
      expect(a.status).toBe(408);
      const body = JSON.parse(a.body.replace(/^[0-9a-f]+\r\n/, '').split('\r\n')[0]);
      expect(body.error).toMatchObject({ code: 'UPLOAD_TIMEOUT' });
      expect(body.error.message).toMatch(/UPLOAD_MIN_BYTES_PER_S/);
      expect(typeof body.error.requestId).toBe('string');
      expect(a.closedMs).toBeLessThan(5000); // the window is 1 s: cut within a few polls, not held
    }
    await waitFor(async () => requestDirs().length === 0, 5000);
    // The half-written upload file was closed, not left open under its deleted folder.
    await waitFor(async () => fdsInto(process.pid, server.config.tempDir).length === 0, 5000);
  });

  it('honest uploads keep getting 200 in bounded time while slow clients attack', async () => {
    const attackers = Array.from({ length: 6 }, (_, i) => slowClient(server.url, i % 2, 300));
    try {
      await sleep(200); // the attackers are connected and sending
      const times: number[] = [];
      for (let i = 0; i < 4; i++) {
        const t0 = performance.now();
        const res = await upload(server.url, videoForm(CLIP, { maxFrames: '8' }));
        times.push(performance.now() - t0);
        expect(res.status, res.text).toBe(200);
        expect(res.json.frames).toHaveLength(8);
      }
      console.info(`[figures] honest uploads during a 6-client slow-loris attack: ${times.map((t) => `${Math.round(t)} ms`).join(', ')}`);
      for (const t of times) expect(t).toBeLessThan(5000);
      const answers = await Promise.all(attackers.map((a) => a.answer));
      for (const a of answers) expect(a.status).toBe(408);
      expect((await getHealth(server.url)).status).toBe('ready');
    } finally {
      for (const a of attackers) a.stop();
    }
    await waitFor(async () => requestDirs().length === 0, 5000);
  });

  it('a body refused mid-way (a file in the wrong field) that then trickles: 400, and its connection goes within the rate window', async () => {
    const { port } = new URL(server.url);
    const socket = net.connect(Number(port), '127.0.0.1');
    socket.write(
      `POST /api/upload-video-with-pose HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=${BOUNDARY}\r\n` +
        `Content-Length: 1000000\r\n\r\n--${BOUNDARY}\r\nContent-Disposition: form-data; name="notvideo"; filename="a.mp4"\r\n\r\n`,
    );
    let received = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (received += d));
    socket.on('error', () => undefined);
    const t0 = Date.now();
    const ticker = setInterval(() => socket.write('z'), 300);
    await new Promise((r) => socket.once('close', r));
    clearInterval(ticker);
    expect(received).toMatch(/^HTTP\/1\.1 400/);
    expect(received).toContain('"BAD_FIELD"');
    expect(Date.now() - t0).toBeLessThan(5000); // window 1 s under 2 KB/s: the drain is cut, not held
  });

  it('an upload at an honest pace is not cut, however long it takes within UPLOAD_TIMEOUT_MS', async () => {
    // ~32 KB/s for the whole clip (above the 2 KB/s floor): several rate windows long.
    const clip = readFileSync(CLIP);
    const { port } = new URL(server.url);
    const head = multipartHead({ maxFrames: '4' });
    const tail = Buffer.from(`\r\n--${BOUNDARY}--\r\n`);
    const body = Buffer.concat([head, clip, tail]);
    const socket = net.connect(Number(port), '127.0.0.1');
    socket.write(
      `POST /api/upload-video-with-pose HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: multipart/form-data; boundary=${BOUNDARY}\r\n` +
        `Content-Length: ${body.length}\r\n\r\n`,
    );
    let received = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (received += d));
    const closed = new Promise((r) => socket.once('close', r));
    const step = 3200;
    for (let off = 0; off < body.length; off += step) {
      socket.write(body.subarray(off, off + step));
      await sleep(100);
    }
    await closed;
    expect(received).toMatch(/^HTTP\/1\.1 200/);
  }, 60_000);
});

describe('pixel bombs', () => {
  it('a small H.264 file of 16000x4000 frames is refused 413 FRAME_TOO_LARGE in under a second, before any decode', async () => {
    const bomb = path.join(server.config.tempDir, '..', `posepool-bomb-${process.pid}.mp4`);
    writeFileSync(bomb, pixelBomb()); // the soak's: one 16000x4000 H.264 frame
    try {
      const rssBefore = procFigures(process.pid).rssKb / 1024;
      const t0 = performance.now();
      const res = await upload(server.url, videoForm(bomb));
      const ms = performance.now() - t0;
      console.info(
        `[figures] pixel bomb (16000x4000, ${Math.round(readFileSync(bomb).length / 1024)} KB): ${res.status} in ${Math.round(ms)} ms, server RSS ${rssBefore.toFixed(0)} → ${(procFigures(process.pid).rssKb / 1024).toFixed(0)} MB`,
      );
      expect(res.status, res.text).toBe(413);
      expect(res.json.error).toMatchObject({ code: 'FRAME_TOO_LARGE', width: 16000, height: 4000, maxPixels: 4096 * 2160 });
      expect(ms).toBeLessThan(1000);
      expect(procFigures(process.pid).rssKb / 1024 - rssBefore).toBeLessThan(64); // a decoded frame would be 96 MB of RGB
      await waitFor(async () => requestDirs().length === 0, 5000);
      expect(childrenOf(process.pid).filter((c) => c.comm.startsWith('ffmpeg') || c.comm.startsWith('ffprobe'))).toEqual([]);
    } finally {
      rmSync(bomb, { force: true });
    }
  }, 60_000);
});

describe('sparse sampling of a long video', () => {
  it('seeks: the same frames as reading straight through, at a cost that follows the frames asked for, not the length', async () => {
    const { ffmpeg, ffprobe } = findTools();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'posepool-sparse-'));
    try {
      // A 10-minute 1080p file of few bytes, as in the report: 10 s encoded once, then copied 60 times.
      const piece = path.join(dir, 'piece.mp4');
      execFileSync(ffmpeg, [
        '-v',
        'error',
        '-y',
        '-f',
        'lavfi',
        '-i',
        'testsrc2=s=1920x1080:r=30:d=10',
        '-vf',
        'hue=s=0',
        '-c:v',
        'libx264',
        '-preset',
        'ultrafast',
        '-g',
        '250',
        '-pix_fmt',
        'yuv420p',
        piece,
      ]);
      const list = path.join(dir, 'list.txt');
      writeFileSync(list, Array.from({ length: 60 }, () => `file '${piece}'`).join('\n'));
      const long = path.join(dir, 'long.mp4');
      execFileSync(ffmpeg, ['-v', 'error', '-y', '-f', 'concat', '-safe', '0', '-i', list, '-c', 'copy', long]);
      const video = await probeVideo(ffprobe, long);
      expect(video.durationMs).toBeGreaterThan(599_000);
      const base = { ffmpeg, file: long, maxFrames: 3000, width: 1920, height: 1080, pixels: 'rgb24' as const };

      const timed = async (o: FrameSourceOptions) => {
        const t0 = performance.now();
        const frames: { timeMs: number; sum: number }[] = [];
        for await (const f of extractFrames(o)) frames.push({ timeMs: f.timeMs, sum: f.data.reduce((a, b) => (a + b) % 1_000_003, 0) });
        return { frames, ms: performance.now() - t0 };
      };
      const six = await timed({ ...base, fps: 0.01, durationMs: video.durationMs }); // seeks
      const twelve = await timed({ ...base, fps: 0.02, durationMs: video.durationMs }); // seeks
      const straight = await timed({ ...base, fps: 0.01 }); // no duration given: reads the whole file
      console.info(
        `[figures] sparse sampling, 10-minute 1080p: 6 samples by seeking ${Math.round(six.ms)} ms, 12 samples ${Math.round(twelve.ms)} ms ` +
          `(ratio ${(twelve.ms / six.ms).toFixed(2)}), 6 samples reading the whole file ${Math.round(straight.ms)} ms (${(straight.ms / six.ms).toFixed(1)}x)`,
      );
      expect(six.frames.map((f) => f.timeMs)).toEqual([0, 100_000, 200_000, 300_000, 400_000, 500_000]);
      expect(twelve.frames.map((f) => f.timeMs)).toEqual(Array.from({ length: 12 }, (_, i) => i * 50_000));
      expect(six.frames).toEqual(straight.frames); // the same frames, pixel for pixel
      expect(twelve.ms / six.ms).toBeGreaterThan(1.3); // cost follows the samples…
      expect(twelve.ms / six.ms).toBeLessThan(3.5);
      expect(straight.ms / six.ms).toBeGreaterThan(3); // …not the file's length
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);

  it('refuses fps under the floor, and a request that would decode more than MAX_DECODED_FRAMES, before any decode', async () => {
    const slow = await upload(server.url, videoForm(CLIP, { fps: '0.001' }));
    expect(slow.status).toBe(400);
    expect(slow.json.error).toMatchObject({ code: 'BAD_FIELD', field: 'fps' });
    const capped = await startTestServer({ POSE_WORKERS: '1', MAX_DECODED_FRAMES: '30' });
    try {
      await waitFor(async () => (await getHealth(capped.url)).status === 'ready', 90_000, 100);
      const res = await upload(capped.url, videoForm(CLIP, { fps: '10' })); // 2 s at 30 fps: 60 decodes
      expect(res.status).toBe(400);
      expect(res.json.error).toMatchObject({ code: 'BAD_FIELD', field: 'fps' });
      expect(res.json.error.message).toMatch(/MAX_DECODED_FRAMES \(30\)/);
      expect((await upload(capped.url, videoForm(CLIP, { fps: '10', maxFrames: '5' }))).status).toBe(200); // 0.5 s: 15 decodes
    } finally {
      await capped.close();
    }
  }, 120_000);
});

describe('one error format everywhere, whatever layer answers', () => {
  /** Sends raw bytes, reads the whole answer (the server closes or the test's deadline passes). */
  const rawExchange = (
    bytes: Buffer | string,
    waitMs = 3000,
  ): Promise<{ status: number; headers: string; json: ErrorBody; text: string }> =>
    new Promise((resolve, reject) => {
      const socket = net.connect(Number(new URL(server.url).port), '127.0.0.1');
      let got = Buffer.alloc(0);
      socket.on('data', (d: Buffer) => (got = Buffer.concat([got, d])));
      socket.on('error', () => undefined);
      const done = () => {
        socket.destroy();
        const text = got.toString('latin1');
        const [head, ...rest] = text.split('\r\n\r\n');
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
        let body = rest.join('\r\n\r\n');
        if (/transfer-encoding: chunked/i.test(head)) body = body.replace(/^[0-9a-f]+\r\n/i, '').replace(/\r\n0\r\n\r\n$/, '');
        try {
          resolve({ status, headers: head, json: JSON.parse(body), text });
        } catch {
          reject(new Error(`not a JSON answer: ${text.slice(0, 300)}`));
        }
      };
      const timer = setTimeout(done, waitMs);
      socket.once('close', () => {
        clearTimeout(timer);
        done();
      });
      socket.write(bytes);
    });

  const post = (pathname: string, type: string, body: Buffer, extra = '') =>
    Buffer.concat([
      Buffer.from(
        `POST ${pathname} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: ${type}\r\nContent-Length: ${body.length}\r\n${extra}\r\n`,
      ),
      body,
    ]);
  const twoMB = Buffer.from(JSON.stringify({ a: 'x'.repeat(2 * 1024 * 1024) }));
  const multipart = (parts: string) => Buffer.from(`${parts}--${BOUNDARY}--\r\n`, 'latin1');
  const videoPart = `--${BOUNDARY}\r\nContent-Disposition: form-data; name="video"; filename="a.mp4"\r\nContent-Type: video/mp4\r\n\r\n${readFileSync(CLIP).toString('latin1')}\r\n`;

  const cases: [string, () => Buffer | string, number, string][] = [
    [
      'a job id over 100 characters',
      () => `GET /api/jobs/${'a'.repeat(150)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
      400,
      'BAD_REQUEST',
    ],
    [
      'a malformed %-escape in the path',
      () => 'GET /api/jobs/%E0%A4%A HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
      400,
      'BAD_REQUEST',
    ],
    ['a 70 KB header', () => `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(70_000)}\r\n\r\n`, 431, 'HEADERS_TOO_LARGE'],
    ['a request line that is not HTTP', () => 'FOO / HTTP/1.1\r\nHost: x\r\n\r\n', 400, 'BAD_REQUEST'],
    ['a 2 MB JSON body to the upload route', () => post('/api/upload-video-with-pose', 'application/json', twoMB), 400, 'MISSING_VIDEO'],
    ['a 2 MB text body to the upload route', () => post('/api/upload-video-with-pose', 'text/plain', twoMB), 400, 'MISSING_VIDEO'],
    // JSON is a job body too (a finished upload's id): one over 16 KB is refused before it is read.
    ['a 2 MB JSON body to the jobs route', () => post('/api/jobs', 'application/json', twoMB), 400, 'BAD_REQUEST'],
    ['a 2 MB text body to the jobs route', () => post('/api/jobs', 'text/plain', twoMB), 400, 'MISSING_VIDEO'],
    [
      'a 2 MB JSON body to DELETE a job',
      () => post('/api/jobs/0b7c0000-0000-4000-8000-000000000000', 'application/json', twoMB).toString('latin1').replace('POST', 'DELETE'),
      400,
      'BAD_REQUEST',
    ],
    [
      'a 10 MB field value',
      () =>
        post(
          '/api/upload-video-with-pose',
          `multipart/form-data; boundary=${BOUNDARY}`,
          multipart(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="role"\r\n\r\n${'r'.repeat(10 * 1024 * 1024)}\r\n${videoPart}`),
        ),
      400,
      'BAD_FIELD',
    ],
    [
      'a field name with a NUL byte and an escape sequence',
      () =>
        post(
          '/api/upload-video-with-pose',
          `multipart/form-data; boundary=${BOUNDARY}`,
          multipart(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="a\u0000b\u001b[31m"\r\n\r\nv\r\n${videoPart}`),
        ),
      400,
      'BAD_FIELD',
    ],
  ];

  for (const [name, request, status, code] of cases) {
    it(`${name}: ${status} ${code}, the catalogue's shape, a request id, nothing echoed raw`, async () => {
      const res = await rawExchange(request());
      expect(res.status, res.text.slice(0, 300)).toBe(status);
      expect(Object.keys(res.json)).toEqual(['error']);
      expect(res.json.error.code).toBe(code);
      expect(typeof res.json.error.message).toBe('string');
      expect(res.json.error.requestId).toMatch(/^[0-9a-f-]{36}$/);
      expect(new RegExp(`x-request-id: ${res.json.error.requestId}`, 'i').test(res.headers)).toBe(true);
      const body = JSON.stringify(res.json);
      expect(body).not.toMatch(/[\u0000-\u0008\u000b-\u001f]|\\u00[01][0-9a-f]/i); // no control characters, raw or escaped
      expect(body).not.toMatch(/aaaaaaaaaa|rrrrrrrrrr|xxxxxxxxxx/); // no echo of what was sent
      expect(body.length).toBeLessThan(1000);
    }, 30_000);
  }

  it('a 10 MB field value says it is too long (not a pattern mismatch)', async () => {
    const res = await rawExchange(
      post(
        '/api/upload-video-with-pose',
        `multipart/form-data; boundary=${BOUNDARY}`,
        multipart(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="role"\r\n\r\n${'r'.repeat(10 * 1024 * 1024)}\r\n${videoPart}`),
      ),
    );
    expect(res.json.error).toMatchObject({ code: 'BAD_FIELD', field: 'role' });
    expect(res.json.error.message).toMatch(/too long/);
  }, 30_000);
});
