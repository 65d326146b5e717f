/**
 * Resumable uploads end to end (tus-js-client in Node, real HTTP, real Python workers running the
 * synthetic test double): an upload whose connection is cut at about half resumes from the server's
 * offset and is posed once; MAX_UPLOAD_MB holds at creation and while bytes stream; a job from an
 * upload gets the multipart route's 4xx for a bad video or field; unknown, incomplete and used
 * uploads get the catalogue's codes; UPLOAD_EXPIRY_S removes uploads' files; API_TOKEN applies; and
 * on the Redis engine the upload's file moves into the job's storage.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { type DetailedError, defaultOptions, type HttpRequest, type HttpResponse, Upload, type UploadOptions } from 'tus-js-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type TestRedis, whyNoRedis } from '../../../scripts/redis-process.js';
import { describeIfReady } from '../../../workers/test/support/prerequisites.js';
import type { JobBody } from '../support/api-bodies.js';
import { type CuttingProxy, startCuttingProxy } from '../support/cutting-proxy.js';
import { getJob, postJobJson } from '../support/jobs-api.js';
import {
  FIXTURES,
  IMAGES,
  startTestServer,
  type TestServer,
  tempDirs,
  upload,
  videoForm,
  waitFor,
  waitReady,
} from '../support/test-server.js';
import { findTools } from '../support/tools.js';

const CHUNK = 64 * 1024;
const scratch = mkdtempSync(path.join(os.tmpdir(), 'e2e-scratch-tus-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A real 2 MB video: the committed 2 s clip thirty times over (stream copy, 60 s, 1800 frames). */
function longClip(): string {
  const file = path.join(scratch, 'loop.mp4');
  if (!existsSync(file)) {
    execFileSync(findTools().ffmpeg, [
      '-v',
      'error',
      '-y',
      '-stream_loop',
      '29',
      '-i',
      path.join(FIXTURES, 'messi-pan.mp4'),
      '-c',
      'copy',
      file,
    ]);
  }
  return file;
}

interface Exchange {
  method: string;
  /** Upload-Offset the request carried (PATCH) or the answer gave (HEAD, PATCH). */
  requestOffset?: number;
  status?: number;
  responseOffset?: number;
}

interface TusResult {
  url: string;
  id: string;
  /** Bytes tus-js-client read from the file to send: the file once, plus what it sent again. */
  bytesRead: number;
  exchanges: Exchange[];
  progress: number[];
}

/** Uploads `data` with tus-js-client; resolves on success, rejects with tus-js-client's error. */
function tusUpload(endpoint: string, data: Buffer, options: UploadOptions = {}): Promise<TusResult> {
  let bytesRead = 0;
  const exchanges: Exchange[] = [];
  const progress: number[] = [];
  const reader = defaultOptions.fileReader;
  return new Promise((resolve, reject) => {
    const up = new Upload(data, {
      endpoint,
      chunkSize: CHUNK,
      retryDelays: [100, 500, 1000],
      metadata: { filename: 'clip.mp4', filetype: 'video/mp4' },
      // Counts every byte handed to a PATCH, so a chunk sent twice is counted twice.
      fileReader: {
        async openFile(input, chunkSize) {
          const source = await reader.openFile(input, chunkSize);
          return {
            size: source.size,
            close: () => source.close(),
            async slice(start, end) {
              const part = await source.slice(start, end);
              bytesRead += (part.value as Buffer | undefined)?.length ?? 0;
              return part;
            },
          };
        },
      },
      onBeforeRequest(req: HttpRequest) {
        const offset = req.getHeader('Upload-Offset');
        exchanges.push({ method: req.getMethod(), requestOffset: offset === undefined ? undefined : Number(offset) });
      },
      onAfterResponse(req: HttpRequest, res: HttpResponse) {
        const e = [...exchanges].reverse().find((x) => x.method === req.getMethod() && x.status === undefined);
        if (e) {
          e.status = res.getStatus();
          const offset = res.getHeader('Upload-Offset');
          if (offset !== undefined) e.responseOffset = Number(offset);
        }
      },
      onProgress: (sent) => progress.push(sent),
      onSuccess: () => {
        const url = up.url as string;
        resolve({ url, id: url.split('/').pop() as string, bytesRead, exchanges, progress });
      },
      onError: reject,
      ...options,
    });
    up.start();
  });
}

const TUS = { 'tus-resumable': '1.0.0' };

/** POST /api/uploads: the raw protocol, for what tus-js-client would never send. */
async function createUpload(url: string, headers: Record<string, string>): Promise<{ status: number; id: string; text: string }> {
  const res = await fetch(`${url}/api/uploads`, { method: 'POST', headers: { ...TUS, ...headers } });
  return { status: res.status, id: (res.headers.get('location') ?? '').split('/').pop() ?? '', text: await res.text() };
}

async function head(url: string, id: string, headers: Record<string, string> = {}): Promise<{ status: number; offset: number | null }> {
  const res = await fetch(`${url}/api/uploads/${id}`, { method: 'HEAD', headers: { ...TUS, ...headers } });
  const offset = res.headers.get('upload-offset');
  return { status: res.status, offset: offset === null ? null : Number(offset) };
}

/**
 * PATCH with `bytes` bytes from `offset`, declared with Content-Length or streamed chunked (a client
 * that does not say how much is coming). Resolves with the answer, which may come before the body ends.
 */
function patch(
  url: string,
  id: string,
  offset: number,
  bytes: number,
  opts: { contentLength: boolean },
): Promise<{ status: number; text: string; sent: number }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...TUS, 'upload-offset': String(offset), 'content-type': 'application/offset+octet-stream' };
    if (opts.contentLength) headers['content-length'] = String(bytes);
    const req = http.request(`${url}/api/uploads/${id}`, { method: 'PATCH', headers });
    let sent = 0;
    let answered = false;
    req.on('response', (res) => {
      answered = true;
      let text = '';
      res.on('data', (d: Buffer) => (text += d));
      res.on('end', () => {
        req.destroy();
        resolve({ status: res.statusCode ?? 0, text, sent });
      });
    });
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    const block = Buffer.alloc(16 * 1024, 7);
    const write = () => {
      while (sent < bytes && !answered) {
        const n = Math.min(block.length, bytes - sent);
        sent += n;
        if (!req.write(block.subarray(0, n))) return void req.once('drain', write);
      }
      if (!answered) req.end();
    };
    write();
  });
}

/** A counter or histogram count from /metrics, summed over its labels. */
async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

/** Files in the resumable store's folders (tus/ and taken/). */
function storeFiles(server: TestServer): string[] {
  return ['tus', 'taken'].flatMap((d) => {
    const dir = path.join(server.config.resumable.dir, d);
    return existsSync(dir) ? readdirSync(dir).map((n) => `${d}/${n}`) : [];
  });
}

describe('resumable uploads (tus, memory engine, synthetic backend)', () => {
  let server: TestServer;
  let proxy: CuttingProxy;
  beforeAll(async () => {
    server = await startTestServer({ POSE_WORKERS: '2', POSE_BATCH_SIZE: '4', MAX_UPLOAD_MB: '3' });
    await waitReady(server.url);
  });
  afterAll(async () => {
    await proxy?.close();
    await server?.close();
  });

  it('a connection cut at about half: the upload resumes from the server offset (under one chunk sent twice) and is posed once', async () => {
    const clip = readFileSync(longClip());
    const half = Math.floor(clip.length / CHUNK / 2) * CHUNK + CHUNK / 2; // mid-chunk, at about half the file
    proxy = await startCuttingProxy(server.url, { cutAfterPatchBytes: half });
    const bytesBefore = await metric(server.url, 'posepool_resumable_bytes_total');

    const up = await tusUpload(`${proxy.url}/api/uploads`, clip);
    expect(proxy.cuts).toBe(1);
    // The cut PATCH, then a HEAD (the server's offset), then PATCHes from exactly that offset.
    const heads = up.exchanges.filter((e) => e.method === 'HEAD');
    expect(heads).toHaveLength(1);
    const at = up.exchanges.indexOf(heads[0]);
    const cutPatch = up.exchanges[at - 1];
    expect(cutPatch.method).toBe('PATCH');
    expect(cutPatch.status).toBeUndefined(); // no answer: the line went dead
    const serverOffset = heads[0].responseOffset!;
    expect(heads[0].status).toBe(200);
    expect(up.exchanges[at + 1]).toMatchObject({ method: 'PATCH', requestOffset: serverOffset, status: 204 });
    // The server kept the part of the cut chunk that reached it: the offset is inside that chunk, near half.
    expect(serverOffset).toBeGreaterThan(cutPatch.requestOffset!);
    expect(serverOffset).toBeLessThan(cutPatch.requestOffset! + CHUNK);
    expect(Math.abs(serverOffset / clip.length - 0.5)).toBeLessThan(0.1);
    const resent = up.bytesRead - clip.length;
    expect(resent).toBeGreaterThan(0);
    expect(resent).toBeLessThan(CHUNK);
    // The progress bar's source never ran past the file, and ended at its end.
    expect(up.progress.at(-1)).toBe(clip.length);
    console.log(
      `tus resume: ${clip.length} bytes in ${CHUNK / 1024} KB chunks, cut at ${cutPatch.requestOffset} + part of a chunk; server offset ${serverOffset}; ` +
        `bytes re-sent ${resent} (${((100 * resent) / CHUNK).toFixed(0)}% of a chunk); client sent ${proxy.bytesFromClients} bytes in all (HTTP included)`,
    );
    // Each byte reached the file once.
    expect((await metric(server.url, 'posepool_resumable_bytes_total')) - bytesBefore).toBe(clip.length);

    const batchesBefore = await metric(server.url, 'posepool_batch_duration_seconds_count');
    const posted = await postJobJson(server.url, { uploadId: up.id, fps: 1, maxFrames: 100, role: 'coach' });
    expect(posted.status).toBe(202);
    expect(posted.json.progress.expected).toBe(60);
    await waitFor(async () => ['succeeded', 'failed'].includes((await getJob(server.url, posted.json.id)).json.state), 60_000, 200);
    const job = (await getJob(server.url, posted.json.id)).json;
    expect(job.state).toBe('succeeded');
    const frames = job.result!.frames;
    expect(frames.map((f) => f.index)).toEqual([...Array(60).keys()]); // every sampled frame, once, in order
    expect(job.result!.summary).toMatchObject({ framesSampled: 60, framesWithPose: 60, framesFailed: 0 });
    expect(job.result!.role).toBe('coach');
    // Posed once: 60 frames in batches of 4 are 15 detect calls, none repeated.
    expect((await metric(server.url, 'posepool_batch_duration_seconds_count')) - batchesBefore).toBe(15);

    // The upload started one job: it is gone from the store, and a second job from it is 404.
    const again = await postJobJson(server.url, { uploadId: up.id });
    expect(again.status).toBe(404);
    expect(again.json.error.code).toBe('UPLOAD_NOT_FOUND');
    expect((await head(server.url, up.id)).status).toBe(404);
    await waitFor(async () => storeFiles(server).filter((f) => f.includes(up.id)).length === 0, 5000);
  });

  it('MAX_UPLOAD_MB: an Upload-Length over it is 413 at creation, and bytes beyond the length are cut off while they stream', async () => {
    const max = 3 * 1024 * 1024;
    const big = await createUpload(server.url, { 'upload-length': String(max + 1) });
    expect(big.status).toBe(413);
    // tus-js-client gets the same, and does not retry a 4xx.
    const refused = await tusUpload(`${server.url}/api/uploads`, Buffer.alloc(max + 1, 1)).catch((e: DetailedError) => e);
    expect((refused as DetailedError).originalResponse?.getStatus()).toBe(413);

    // A lying client: it declares 1000 bytes, then sends 5000, said up front or streamed.
    const small = await createUpload(server.url, { 'upload-length': '1000' });
    expect(small.status).toBe(201);
    const declared = await patch(server.url, small.id, 0, 5000, { contentLength: true });
    expect(declared.status).toBe(413);
    expect((await head(server.url, small.id)).offset).toBe(0);
    const streamed = await patch(server.url, small.id, 0, 5000, { contentLength: false });
    expect(streamed.status).toBe(413);
    expect((await head(server.url, small.id)).offset).toBeLessThanOrEqual(1000);

    // A deferred length streams past MAX_UPLOAD_MB: cut at the limit, never written beyond it.
    const deferred = await createUpload(server.url, { 'upload-defer-length': '1' });
    expect(deferred.status).toBe(201);
    const flood = await patch(server.url, deferred.id, 0, max + 512 * 1024, { contentLength: false });
    expect(flood.status).toBe(413);
    const kept = (await head(server.url, deferred.id)).offset!;
    expect(kept).toBeLessThanOrEqual(max);
    expect(readFileSync(path.join(server.config.resumable.dir, 'tus', deferred.id)).length).toBe(kept);
    // Neither is a job: both are incomplete.
    expect((await postJobJson(server.url, { uploadId: deferred.id })).json.error.code).toBe('UPLOAD_INCOMPLETE');
    for (const id of [small.id, deferred.id]) {
      expect((await fetch(`${server.url}/api/uploads/${id}`, { method: 'DELETE', headers: TUS })).status).toBe(204);
    }
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
  });

  it("a job from an upload of a bad video gets the multipart route's 415 / 422, and the upload goes with it", async () => {
    const cases: [string, Buffer<ArrayBuffer>, number, string][] = [
      ['a still image', readFileSync(path.join(IMAGES, 'messi5.jpg')), 415, 'NOT_A_VIDEO'],
      ['a truncated MP4', Buffer.from(readFileSync(path.join(FIXTURES, 'messi-pan.mp4')).subarray(0, 30_000)), 422, 'UNDECODABLE_VIDEO'],
    ];
    for (const [what, bytes, status, code] of cases) {
      const form = new FormData();
      form.append('video', new Blob([bytes]), 'clip.mp4');
      const multipart = await fetch(`${server.url}/api/jobs`, { method: 'POST', body: form });
      expect(multipart.status, what).toBe(status);
      expect(((await multipart.json()) as JobBody).error.code, what).toBe(code);

      const up = await tusUpload(`${server.url}/api/uploads`, bytes);
      const viaTus = await postJobJson(server.url, { uploadId: up.id, fps: '5' });
      expect(viaTus.status, what).toBe(status);
      expect(viaTus.json.error.code, what).toBe(code);
      // No request could ever pose these bytes: the upload is removed, not kept for a retry.
      expect((await postJobJson(server.url, { uploadId: up.id })).json.error.code, what).toBe('UPLOAD_NOT_FOUND');
    }
    expect(storeFiles(server).filter((f) => f.startsWith('taken/'))).toEqual([]);
  });

  it('the JSON body is parsed as the multipart fields: a bad one is the same 400, and leaves the upload for a retry', async () => {
    const clip = path.join(FIXTURES, 'vtest-3s.mp4');
    const sync = await upload(server.url, videoForm(clip, { role: 'Bad Role!' }));
    const up = await tusUpload(`${server.url}/api/uploads`, readFileSync(clip));
    const bad = await postJobJson(server.url, { uploadId: up.id, role: 'Bad Role!' });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatchObject({ code: 'BAD_FIELD', field: 'role', message: sync.json.error.message });
    for (const [body, field] of [
      [{ uploadId: up.id, fps: 'ten' }, 'fps'],
      [{ uploadId: up.id, maxFrames: 0 }, 'maxFrames'],
      [{ uploadId: up.id, tracking: 'maybe' }, 'tracking'],
      [{ uploadId: up.id, colour: 'red' }, 'colour'],
      [{ uploadId: up.id, fps: { n: 1 } }, 'fps'],
      [{ uploadId: 'not-an-id' }, 'uploadId'],
    ] as const) {
      const res = await postJobJson(server.url, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.json.error, JSON.stringify(body)).toMatchObject({ code: 'BAD_FIELD', field });
    }
    // Still there: the job it was meant for starts now, with JSON numbers and booleans.
    const good = await postJobJson(server.url, { uploadId: up.id, fps: 2, maxFrames: 4, tracking: false, smoothing: true });
    expect(good.status).toBe(202);
    expect(good.json.progress.expected).toBe(4);
    await waitFor(async () => (await getJob(server.url, good.json.id)).json.state === 'succeeded', 20_000);
  });

  it('unknown, malformed, incomplete and missing upload ids get catalogue errors; no temporary directory is left', async () => {
    await waitFor(async () => tempDirs().length === 0, 10_000);
    const unknown = await postJobJson(server.url, { uploadId: '0123456789abcdef0123456789abcdef' });
    expect(unknown.status).toBe(404);
    expect(unknown.json.error.code).toBe('UPLOAD_NOT_FOUND');
    expect(unknown.json.error.requestId).toMatch(/^[0-9a-f-]{36}$/);

    const partial = await createUpload(server.url, {
      'upload-length': '1000',
      'upload-metadata': `filename ${Buffer.from('../../etc/passwd').toString('base64')}`,
    });
    expect((await patch(server.url, partial.id, 0, 400, { contentLength: true })).status).toBe(204);
    const incomplete = await postJobJson(server.url, { uploadId: partial.id });
    expect(incomplete.status).toBe(409);
    expect(incomplete.json.error).toMatchObject({ code: 'UPLOAD_INCOMPLETE', offset: 400, length: 1000 });
    // Still resumable where it stopped.
    expect((await head(server.url, partial.id)).offset).toBe(400);

    const none = await postJobJson(server.url, { fps: 5 });
    expect(none.status).toBe(400);
    expect(none.json.error.code).toBe('MISSING_VIDEO');
    const notObject = await postJobJson(server.url, ['uploadId']);
    expect(notObject.status).toBe(400);
    expect(notObject.json.error.code).toBe('BAD_REQUEST');
    const tooBig = await postJobJson(server.url, { uploadId: partial.id, role: 'x'.repeat(20_000) });
    expect(tooBig.status).toBe(400);
    expect(tooBig.json.error.code).toBe('BAD_REQUEST');
    const text = await fetch(`${server.url}/api/jobs`, { method: 'POST', body: 'hello', headers: { 'content-type': 'text/plain' } });
    expect(text.status).toBe(400);
    expect(((await text.json()) as JobBody).error.code).toBe('MISSING_VIDEO');

    // tus protocol errors keep tus's own answers (not the catalogue): a missing Tus-Resumable is 412, a wrong offset 409.
    expect((await fetch(`${server.url}/api/uploads`, { method: 'POST', headers: { 'upload-length': '10' } })).status).toBe(412);
    expect((await patch(server.url, partial.id, 100, 10, { contentLength: true })).status).toBe(409);
    // A malformed upload id in the URL is our own 400, in the catalogue's shape.
    const malformed = await fetch(`${server.url}/api/uploads/..%2F..%2Fetc`, { method: 'HEAD', headers: TUS });
    expect(malformed.status).toBe(400);
    expect(tempDirs()).toEqual([]);
  });
});

describe('resumable uploads expire, and API_TOKEN applies to them', () => {
  let server: TestServer;
  const auth = { authorization: 'Bearer s3cret' };
  beforeAll(async () => {
    server = await startTestServer({ POSE_WORKERS: '1', UPLOAD_EXPIRY_S: '3', API_TOKEN: 's3cret' });
    await waitReady(server.url);
  });
  afterAll(async () => server?.close());

  it('without the token every tus request is 401 in the catalogue shape; with it tus-js-client uploads', async () => {
    const denied = await fetch(`${server.url}/api/uploads`, { method: 'POST', headers: { ...TUS, 'upload-length': '10' } });
    expect(denied.status).toBe(401);
    expect(((await denied.json()) as JobBody).error.code).toBe('UNAUTHORIZED');
    const refused = await tusUpload(`${server.url}/api/uploads`, Buffer.alloc(100)).catch((e: DetailedError) => e);
    expect((refused as DetailedError).originalResponse?.getStatus()).toBe(401);
    const up = await tusUpload(`${server.url}/api/uploads`, readFileSync(path.join(FIXTURES, 'vtest-3s.mp4')), { headers: auth });
    expect((await head(server.url, up.id)).status).toBe(401);
    expect((await head(server.url, up.id, auth)).offset).toBe(readFileSync(path.join(FIXTURES, 'vtest-3s.mp4')).length);
    expect((await postJobJson(server.url, { uploadId: up.id })).status).toBe(401);
  });

  it('UPLOAD_EXPIRY_S after creation an upload, finished or not, answers 410/404 and its files are swept', async () => {
    const finished = await tusUpload(`${server.url}/api/uploads`, readFileSync(path.join(FIXTURES, 'vtest-3s.mp4')), { headers: auth });
    const partial = await createUpload(server.url, { ...auth, 'upload-length': '1000' });
    expect(partial.status).toBe(201);
    const files = storeFiles(server);
    for (const id of [finished.id, partial.id]) expect(files).toEqual(expect.arrayContaining([`tus/${id}`, `tus/${id}.json`]));

    await waitFor(async () => storeFiles(server).length === 0, 10_000, 100);
    expect([404, 410]).toContain((await head(server.url, partial.id, auth)).status);
    const late = await postJobJson(server.url, { uploadId: finished.id }, auth);
    expect(late.status).toBe(404);
    expect(late.json.error.code).toBe('UPLOAD_NOT_FOUND');
    expect(await metric(server.url, 'posepool_resumable_uploads_total{event="expired"}')).toBeGreaterThanOrEqual(2);
  });
});

describeIfReady('resumable uploads on the Redis engine (the upload moves into the job storage)', whyNoRedis(), () => {
  let server: TestServer;
  let redis: TestRedis;
  let storage: string;
  beforeAll(async () => {
    redis = await startRedis();
    storage = mkdtempSync(path.join(os.tmpdir(), 'e2e-scratch-storage-'));
    server = await startTestServer({ POSE_WORKERS: '1', POSE_BATCH_SIZE: '4', REDIS_URL: redis.url, POSE_STORAGE_DIR: storage });
    await waitReady(server.url);
  });
  afterAll(async () => {
    await server?.close();
    await redis?.dispose();
    if (storage) rmSync(storage, { recursive: true, force: true });
  });

  it('the upload lives in POSE_STORAGE_DIR/uploads, becomes one job, and leaves nothing behind', async () => {
    const up = await tusUpload(`${server.url}/api/uploads`, readFileSync(path.join(FIXTURES, 'messi-pan.mp4')));
    expect(server.config.resumable.dir).toBe(path.join(storage, 'uploads'));
    expect(existsSync(path.join(storage, 'uploads', 'tus', up.id))).toBe(true);
    const posted = await postJobJson(server.url, { uploadId: up.id, fps: 10 });
    expect(posted.status).toBe(202);
    await waitFor(async () => (await getJob(server.url, posted.json.id)).json.state === 'succeeded', 30_000, 200);
    expect((await getJob(server.url, posted.json.id)).json.result!.frames).toHaveLength(20);
    expect((await postJobJson(server.url, { uploadId: up.id })).json.error.code).toBe('UPLOAD_NOT_FOUND');
    expect(storeFiles(server)).toEqual([]);
    // The job keeps only its result; the upload's bytes went with the job's own files.
    expect(readdirSync(path.join(storage, 'jobs', posted.json.id))).toEqual(['result.json']);
  });
});
