/**
 * Reliability: security. The bearer token (API_TOKEN) on the upload route, with the health probes
 * open; request ids in every answer and its log lines; no stack trace or absolute path in an API
 * body (they are in the log); ffmpeg spawned with an argument array, never a shell, on a file in a
 * private per-request directory. Real server, real Python workers (`synthetic` TEST DOUBLE model).
 */
import { chmodSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../config.js';
import { withoutPaths } from '../../public-text.js';
import { childrenOf, getHealth, LEAKY, multipartHead, privateTmp, rawUpload, requestLines } from '../support/reliability.js';
import { FIXTURES, startTestServer, type TestServer, upload, videoForm, waitFor } from '../support/test-server.js';
import { findTools } from '../support/tools.js';

const tmp = privateTmp('security');
const CLIP = path.join(FIXTURES, 'messi-pan.mp4');
const TOKEN = 'test-token-8c1f0e5b9a2d4c7e';
const auth = { authorization: `Bearer ${TOKEN}` };

let server: TestServer;
/** A server whose ffmpeg cannot even be started: every upload hits an internal error. */
let broken: TestServer;

beforeAll(async () => {
  // FFMPEG_PATH names an executable whose interpreter does not exist: spawn fails with ENOENT and a path.
  const badFfmpeg = path.join(tmp.dir, 'keep-ffmpeg');
  writeFileSync(badFfmpeg, '#!/nonexistent/posepool-test/interpreter\n');
  chmodSync(badFfmpeg, 0o755);
  const realProbe = findTools().ffprobe;
  const start = (env: Record<string, string>, tools?: Record<string, string>) => {
    const saved = { FFMPEG_PATH: process.env.FFMPEG_PATH, FFPROBE_PATH: process.env.FFPROBE_PATH };
    Object.assign(process.env, tools);
    const s = startTestServer(env); // reads the tools synchronously, before its first await
    for (const [k, v] of Object.entries(saved))
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    return s;
  };
  [server, broken] = await Promise.all([
    start({ POSE_WORKERS: '1', POSE_BATCH_SIZE: '4', API_TOKEN: TOKEN, POSE_SYNTHETIC_FAULTS: 'infer_ms=60' }),
    start({ POSE_WORKERS: '1' }, { FFMPEG_PATH: badFfmpeg, FFPROBE_PATH: realProbe }),
  ]);
  await Promise.all([server, broken].map((s) => waitFor(async () => (await getHealth(s.url)).status === 'ready', 90_000, 100)));
});
afterAll(async () => {
  await Promise.all([server?.close(), broken?.close()]);
  tmp.restore();
});

describe('API_TOKEN: a bearer token on the upload route', () => {
  it.each([
    ['no Authorization header', {}],
    ['a wrong token of the same length', { authorization: `Bearer ${TOKEN.replace(/.$/, 'x')}` }],
    ['a prefix of the token', { authorization: `Bearer ${TOKEN.slice(0, 10)}` }],
    ['the token with Basic', { authorization: `Basic ${Buffer.from(`user:${TOKEN}`).toString('base64')}` }],
    ['the bare token without a scheme', { authorization: TOKEN }],
  ])('%s → 401 UNAUTHORIZED, nothing received', async (_name, headers) => {
    const res = await upload(server.url, videoForm(CLIP, { maxFrames: '2' }), headers as Record<string, string>);
    expect(res.status, res.text).toBe(401);
    expect(res.json.error.code).toBe('UNAUTHORIZED');
    expect(res.json.error.requestId).toBe(res.headers.get('x-request-id'));
    expect(res.text).not.toContain(TOKEN.slice(0, 10));
    expect(requestLines(server.logs, res.json.error.requestId).some((r) => r.msg === 'video received')).toBe(false);
  });

  it('the token in the query string does not count', async () => {
    const res = await fetch(`${server.url}/api/upload-video-with-pose?token=${TOKEN}&access_token=${TOKEN}`, {
      method: 'POST',
      body: videoForm(CLIP, { maxFrames: '2' }),
    });
    expect(res.status).toBe(401);
  });

  it('refused before the body is read: a 50 MB upload without the token gets 401 after a few MB, no temp dir made', async () => {
    const res = await rawUpload(server.url, { head: multipartHead({}), file: 50 * 1024 * 1024 });
    expect(res.status).toBe(401);
    expect(res.bytesWritten).toBeLessThan(20 * 1024 * 1024);
    expect(readdirSync(server.config.tempDir)).toEqual([]);
  });

  it('the right token (any case of "Bearer") → 200', async () => {
    for (const scheme of ['Bearer', 'bearer']) {
      const res = await upload(server.url, videoForm(CLIP, { maxFrames: '2' }), { authorization: `${scheme} ${TOKEN}` });
      expect(res.status, res.text).toBe(200);
      expect(res.json.frames).toHaveLength(2);
    }
  });

  it('/health and /health/live stay open without a token', async () => {
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    expect((await fetch(`${server.url}/health/live`)).status).toBe(200);
  });
});

describe('request ids', () => {
  it('every answer has x-request-id: the id of a 200, the requestId of an error, in the log lines of that request', async () => {
    const ok = await upload(server.url, videoForm(CLIP, { maxFrames: '2' }), auth);
    expect(ok.status).toBe(200);
    expect(ok.headers.get('x-request-id')).toBe(ok.json.id);
    const bad = await upload(server.url, videoForm(CLIP, { fps: 'fast' }), auth);
    expect(bad.status).toBe(400);
    expect(bad.headers.get('x-request-id')).toBe(bad.json.error.requestId);
    for (const id of [ok.json.id, bad.json.error.requestId]) {
      const lines = requestLines(server.logs, id);
      expect(lines.length).toBeGreaterThanOrEqual(2);
      expect(lines.every((r) => r.reqId === id || r.requestId === id)).toBe(true);
    }
    expect(requestLines(server.logs, bad.json.error.requestId).find((r) => r.code === 'BAD_FIELD')).toBeDefined();
  });

  it('an id the client sends is not taken over (ids are generated by the server)', async () => {
    const res = await upload(server.url, videoForm(CLIP, { maxFrames: '1' }), {
      ...auth,
      'x-request-id': 'attacker-chosen',
      'request-id': 'attacker-chosen',
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('no stack traces or absolute paths in API bodies', () => {
  it('an internal error (ffmpeg cannot be started): 500 INTERNAL_ERROR with a request id only; the cause with its path and stack is in the log', async () => {
    const res = await upload(broken.url, videoForm(CLIP, { maxFrames: '2' }));
    expect(res.status, res.text).toBe(500);
    expect(res.json.error.code).toBe('INTERNAL_ERROR');
    expect(res.json.error.message).toMatch(/see the server log with this requestId/);
    expect(res.text).not.toMatch(LEAKY);
    expect(res.text).not.toMatch(/ENOENT|keep-ffmpeg|spawn/);
    const logged = requestLines(broken.logs, res.json.error.requestId).find((r) => r.msg === 'unhandled error') as
      | { err: { stack: string } }
      | undefined;
    expect(logged, 'the log line of the 500, under the same request id').toBeDefined();
    expect(JSON.stringify(logged!.err)).toMatch(/keep-ffmpeg/);
    expect(logged!.err.stack).toMatch(/\n\s+at /);
    expect((await getHealth(broken.url)).http).toBe(200);
    expect(readdirSync(broken.config.tempDir)).toEqual([]);
  });

  it('withoutPaths keeps the message and drops POSIX and Windows paths', () => {
    expect(withoutPaths('no pose worker is ready: RuntimeError: boom (python: /usr/bin/python3). Fix: run `npm run setup`')).toBe(
      'no pose worker is ready: RuntimeError: boom (python: <path>). Fix: run `npm run setup`',
    );
    expect(withoutPaths('File "/work/x/pose.py", line 3; python=/opt/py C:\\Python\\python.exe')).toBe(
      'File "<path>", line 3; python=<path> <path>',
    );
    expect(withoutPaths('the body must be multipart/form-data; see https://example.org/a/b; exit code 3/9')).toBe(
      'the body must be multipart/form-data; see https://example.org/a/b; exit code 3/9',
    );
  });
});

describe('ffmpeg and the request directory', () => {
  it('ffmpeg runs from an argument array (no shell), on <private dir>/upload, never the client name; dir 0700, file 0600; all removed after', async () => {
    const name = `$(touch pwned); rm -rf ~ #.mp4`;
    const form = new FormData();
    form.append('video', new Blob([readFileSync(CLIP)]), name);
    form.append('fps', '30');
    form.append('maxFrames', '40');
    const pending = upload(server.url, form, auth);
    // ffmpeg streams while the worker poses (60 ms a frame), so it lives for a while: catch it.
    const ffmpeg = await waitFor(async () => childrenOf(process.pid).find((c) => c.comm === 'ffmpeg'), 20_000, 5);
    const argv = readFileSync(`/proc/${ffmpeg.pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    const dirs = readdirSync(server.config.tempDir);
    const res = await pending;
    expect(res.status, res.text).toBe(200);
    expect(res.json.frames).toHaveLength(40);

    expect(path.basename(argv[0])).toBe('ffmpeg');
    expect(argv).not.toContain('-c'); // not `sh -c "…"`
    expect(argv.join(' ')).not.toContain('pwned');
    const input = argv[argv.indexOf('-i') + 1];
    expect(dirs).toHaveLength(1);
    const dir = path.join(server.config.tempDir, dirs[0]);
    expect(input).toBe(path.join(dir, 'upload'));
    // Its parent is this process (the server), not a shell.
    expect(childrenOf(process.pid).some((c) => c.comm === 'sh' || c.comm === 'bash')).toBe(false);
    await waitFor(async () => readdirSync(server.config.tempDir).length === 0, 3000, 20);
  });

  it('the request directory is private (0700) and the upload in it 0600, while the request runs', async () => {
    const pending = upload(server.url, videoForm(CLIP, { fps: '30', maxFrames: '24' }), auth);
    const dir = await waitFor(
      async () => {
        const d = readdirSync(server.config.tempDir)[0];
        return d && readdirSync(path.join(server.config.tempDir, d)).includes('upload') ? path.join(server.config.tempDir, d) : undefined;
      },
      20_000,
      5,
    );
    const dirMode = statSync(dir).mode & 0o777;
    const fileMode = statSync(path.join(dir, 'upload')).mode & 0o777;
    expect((await pending).status).toBe(200);
    expect(dirMode).toBe(0o700);
    expect(fileMode).toBe(0o600);
    await waitFor(async () => readdirSync(server.config.tempDir).length === 0, 3000, 20);
  });

  it('source check (second line of defence): child processes only through spawn/execFile with argument arrays, never a shell', () => {
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory() && !['test', 'node_modules', 'public'].includes(e.name)) walk(p);
        else if (e.isFile() && p.endsWith('.ts') && !p.endsWith('.test.ts')) files.push(p);
      }
    };
    walk(path.join(REPO_ROOT, 'server'));
    walk(path.join(REPO_ROOT, 'workers'));
    expect(files.some((f) => f.endsWith(path.join('media', 'frame-source.ts')))).toBe(true);
    const offenders: string[] = [];
    for (const file of files) {
      const src = readFileSync(file, 'utf8');
      const rel = path.relative(REPO_ROOT, file);
      if (/\bshell\s*:\s*(true|['"`])/.test(src)) offenders.push(`${rel}: shell option`);
      const imports = [...src.matchAll(/import\s*\{([^}]*)\}\s*from\s*['"](node:)?child_process['"]/g)].flatMap((m) => m[1].split(','));
      for (const name of imports.map((s) => s.trim().split(/\s+as\s+/)[0])) {
        if (['exec', 'execSync'].includes(name)) offenders.push(`${rel}: imports ${name} (runs a shell)`);
      }
      if (/child_process['"]\s*\)\s*\.exec(Sync)?\(|\bcp\.exec(Sync)?\(/.test(src)) offenders.push(`${rel}: exec through a shell`);
      // ffmpeg/ffprobe are started with an argument array: spawn(cmd, [..] or ffmpegArgs(..)), execFile(cmd, [..])
      for (const m of src.matchAll(/\b(spawn|execFile|spawnSync|execFileSync)\(\s*([^,()]+),\s*([^,)]+)/g)) {
        if (!/^\[|Args\(|args\b|^argv\b|Array/.test(m[3].trim()))
          offenders.push(`${rel}: ${m[1]}(${m[2]}, ${m[3]}…) without an argument array`);
      }
    }
    expect(offenders).toEqual([]);
  });
});
