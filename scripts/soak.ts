/**
 * The soak: N sequential uploads against the real server process (dist/server/main.js) and its real
 * Python workers, with before/after figures of what could leak: the server's resident memory and
 * open file descriptors, its child processes (the workers, and any ffmpeg/ffprobe left behind), the
 * workers' memory and restarts, and the request directories. Exit 1 when a figure grew past its bound.
 *
 *   node dist/scripts/soak.js [--uploads 200] [--workers 2] [--model synthetic] [--json FILE]
 *
 * The default model is `synthetic`, the TEST DOUBLE (no weights needed; it measures the server and
 * the pool, not a model). Every 10th upload is a bad one (zero bytes, a truncated MP4, an upload over
 * MAX_UPLOAD_MB, a bad field, a client hanging up mid-upload), so the error paths are soaked too.
 * Linux only for descriptors and children (/proc); elsewhere those figures are left out.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from '../server/config.js';
import { resolveMediaTools } from '../server/runtime/ffmpeg-path.js';
import { freePort } from './free-port.js';

export interface SoakOptions {
  uploads: number;
  workers?: number;
  model?: string;
  /** Uploads before the "before" figures (the server's heap and the workers settle). */
  warmup?: number;
  /** Extra environment for the server. */
  env?: Record<string, string>;
  log?: (line: string) => void;
}

export interface ProcessFigures {
  serverRssKb: number;
  /** null where /proc is not available. */
  serverFds: number | null;
  /** Children of the server by command name (the workers are `python…`). */
  children: Record<string, number> | null;
  workersRssKb: number;
  restarts: number;
  tempEntries: number;
}

export interface SoakReport {
  uploads: number;
  workers: number;
  model: string;
  ms: number;
  /** Outcomes by kind: `ok` = 200 with every frame posed; the rest are the expected refusals. */
  outcomes: Record<string, number>;
  framesPosed: number;
  /** Uploads whose answer was not the one expected (status, code, frame count). */
  unexpected: string[];
  before: ProcessFigures;
  after: ProcessFigures;
  peakServerRssKb: number;
  /** Server RSS at the halfway upload: growth that goes on in the second half is what a leak looks like. */
  midServerRssKb: number;
  deltas: { serverRssKb: number; serverFds: number | null; workersRssKb: number; tempEntries: number; restarts: number };
  bounds: typeof BOUNDS;
  violations: string[];
}

/** What "no growth" means, stated: after the warm-up, over the whole run. */
export const BOUNDS = {
  /** Server RSS growth (V8 heap and allocator slack; a per-request leak of 100 kB shows over 200 uploads). */
  serverRssKb: 40 * 1024,
  /** Open descriptors: none may accumulate (a couple of keep-alive sockets of the client come and go). */
  serverFds: 4,
  /** Sum over the workers. */
  workersRssKb: 40 * 1024,
  tempEntries: 0,
  restarts: 0,
};

const CLIP = path.join(REPO_ROOT, 'server', 'test', 'fixtures', 'messi-pan.mp4');
const MAIN = path.join(REPO_ROOT, 'dist', 'server', 'main.js');
const FRAMES = 8;
const MAX_UPLOAD_MB = 2;

type Kind = 'ok' | 'empty' | 'truncated' | 'too-large' | 'bad-field' | 'hang-up' | 'stalled' | 'json-body' | 'pixel-bomb';

/** The i-th upload's kind: 9 in 10 good, the 10th cycles through the bad ones. */
export function kindOf(i: number): Kind {
  if (i % 10 !== 9) return 'ok';
  const bad: Kind[] = ['empty', 'truncated', 'stalled', 'too-large', 'bad-field', 'pixel-bomb', 'hang-up', 'json-body'];
  return bad[Math.floor(i / 10) % bad.length];
}

/** The soak's server: a stalled body is cut after half a second under 1 KB/s (the defaults: 10 s under 16 KB/s). */
const BODY_LIMITS = { UPLOAD_RATE_WINDOW_MS: '500', UPLOAD_MIN_BYTES_PER_S: '1024' };

export async function runSoak(o: SoakOptions): Promise<SoakReport> {
  const workers = o.workers ?? 2;
  const model = o.model ?? 'synthetic';
  const warmup = o.warmup ?? Math.min(50, Math.max(5, Math.round(o.uploads / 10)));
  const log = o.log ?? (() => undefined);
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: build first (npm run build)`);
  const tempRoot = mkdtempSync(path.join(os.tmpdir(), 'posepool-soak-'));
  const clip = readFileSync(CLIP);
  const started = Date.now();

  const server = await startServer({
    LOG_LEVEL: 'warn',
    POSE_MODEL: model,
    POSE_WORKERS: String(workers),
    POSE_BATCH_SIZE: '4',
    POSE_TEMP_DIR: tempRoot,
    MAX_UPLOAD_MB: String(MAX_UPLOAD_MB),
    ...BODY_LIMITS,
    ...o.env,
  }).catch((err: unknown) => {
    rmSync(tempRoot, { recursive: true, force: true });
    throw err;
  });
  try {
    await until(async () => (await health(server.url)).status === 'ready', 180_000);
    const outcomes: Record<string, number> = {};
    const unexpected: string[] = [];
    let framesPosed = 0;
    let peakServerRssKb = 0;
    const sampler = setInterval(() => {
      try {
        peakServerRssKb = Math.max(peakServerRssKb, rssKb(server.pid));
      } catch {
        // exited
      }
    }, 100);

    const one = async (i: number, counted = true) => {
      const kind = kindOf(i);
      const r = await uploadOnce(server.url, kind, clip);
      const want = EXPECTED[kind];
      let ok = r.status === want.status && (want.code === undefined || r.code === want.code);
      if (kind === 'ok') {
        const frames = (r.body as { frames?: { error?: unknown; persons: unknown[] }[] })?.frames ?? [];
        ok = ok && frames.length === FRAMES && frames.every((f) => !f.error && f.persons.length > 0);
        if (ok && counted) framesPosed += frames.length;
      }
      if (!counted) return;
      outcomes[kind] = (outcomes[kind] ?? 0) + 1;
      if (!ok) unexpected.push(`#${i} ${kind}: ${r.status} ${r.code ?? ''} (wanted ${want.status} ${want.code ?? ''})`);
    };

    for (let i = 0; i < warmup; i++) await one(i, false); // the same mix as the run
    await settle();
    const before = await figures(server, tempRoot);
    log(`soak: warm-up of ${warmup} done; before: ${fmt(before)}`);
    peakServerRssKb = before.serverRssKb;
    const t0 = Date.now();
    let midServerRssKb = before.serverRssKb;
    for (let i = 0; i < o.uploads; i++) {
      await one(i);
      if (i + 1 === Math.ceil(o.uploads / 2)) midServerRssKb = rssKb(server.pid);
      if ((i + 1) % 50 === 0) {
        const heap = await heapUsedKb(server.url);
        log(
          `soak: ${i + 1}/${o.uploads} uploads, ${Math.round((Date.now() - t0) / 1000)} s, server RSS ${mb(rssKb(server.pid))}${heap ? `, V8 heap used ${mb(heap)}` : ''}`,
        );
      }
    }
    clearInterval(sampler);
    await settle();
    const after = await figures(server, tempRoot);
    log(`soak: after: ${fmt(after)}`);

    const deltas = {
      serverRssKb: after.serverRssKb - before.serverRssKb,
      serverFds: after.serverFds === null || before.serverFds === null ? null : after.serverFds - before.serverFds,
      workersRssKb: after.workersRssKb - before.workersRssKb,
      tempEntries: after.tempEntries,
      restarts: after.restarts - before.restarts,
    };
    const violations: string[] = [];
    if (deltas.serverRssKb > BOUNDS.serverRssKb)
      violations.push(`server RSS grew ${mb(deltas.serverRssKb)} (bound ${mb(BOUNDS.serverRssKb)})`);
    if (deltas.serverFds !== null && deltas.serverFds > BOUNDS.serverFds)
      violations.push(`server fds grew by ${deltas.serverFds} (bound ${BOUNDS.serverFds})`);
    if (deltas.workersRssKb > BOUNDS.workersRssKb)
      violations.push(`workers' RSS grew ${mb(deltas.workersRssKb)} (bound ${mb(BOUNDS.workersRssKb)})`);
    if (deltas.tempEntries > BOUNDS.tempEntries) violations.push(`${deltas.tempEntries} request directories left`);
    if (deltas.restarts > BOUNDS.restarts) violations.push(`${deltas.restarts} worker restarts`);
    const { children } = after;
    if (children) {
      const names = Object.keys(children);
      const extra = names.filter((n) => !/^python/.test(n));
      if (extra.length) violations.push(`children left besides the workers: ${extra.join(', ')}`);
      const pythons = names.filter((n) => /^python/.test(n)).reduce((s, n) => s + children[n], 0);
      if (pythons !== workers) violations.push(`${pythons} worker processes, wanted ${workers}`);
    }
    if (unexpected.length) violations.push(`${unexpected.length} unexpected answers: ${unexpected.slice(0, 5).join('; ')}`);

    return {
      uploads: o.uploads,
      workers,
      model,
      ms: Date.now() - started,
      outcomes,
      framesPosed,
      unexpected,
      before,
      after,
      peakServerRssKb,
      midServerRssKb,
      deltas,
      bounds: BOUNDS,
      violations,
    };
  } finally {
    server.child.kill('SIGTERM');
    await Promise.race([server.exited, sleep(15_000)]);
    server.child.kill('SIGKILL');
    rmSync(tempRoot, { recursive: true, force: true });
  }
}

const EXPECTED: Record<Kind, { status: number; code?: string }> = {
  ok: { status: 200 },
  empty: { status: 415, code: 'NOT_A_VIDEO' },
  truncated: { status: 422, code: 'UNDECODABLE_VIDEO' },
  'too-large': { status: 413, code: 'UPLOAD_TOO_LARGE' },
  'bad-field': { status: 400, code: 'BAD_FIELD' },
  'hang-up': { status: 0 },
  stalled: { status: 408, code: 'UPLOAD_TIMEOUT' },
  'json-body': { status: 400, code: 'MISSING_VIDEO' },
  'pixel-bomb': { status: 413, code: 'FRAME_TOO_LARGE' },
};

/** A tiny H.264 file of 16000x4000 frames (made once per process with the server's ffmpeg). */
let bombFile: Buffer | null = null;
export function pixelBomb(): Buffer {
  if (!bombFile) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'posepool-soak-bomb-'));
    try {
      const file = path.join(dir, 'bomb.mp4');
      const args = [
        '-v',
        'error',
        '-y',
        '-f',
        'lavfi',
        '-i',
        'color=black:s=16000x4000',
        '-frames:v',
        '1',
        '-c:v',
        'libx264',
        '-preset',
        'ultrafast',
        file,
      ];
      execFileSync(resolveMediaTools().ffmpeg.path, args);
      bombFile = readFileSync(file);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return bombFile;
}

interface Answer {
  status: number;
  code?: string;
  body?: unknown;
}

async function uploadOnce(url: string, kind: Kind, clip: Buffer): Promise<Answer> {
  if (kind === 'hang-up') return hangUp(url, clip);
  if (kind === 'stalled') return hangUp(url, clip, { stall: true });
  if (kind === 'json-body') {
    const res = await fetch(`${url}/api/upload-video-with-pose`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ video: 'x'.repeat(2 * 1024 * 1024) }),
    });
    const body = (await res.json().catch(() => null)) as { error?: { code?: string } } | null;
    return { status: res.status, code: body?.error?.code, body };
  }
  const form = new FormData();
  const file =
    kind === 'empty'
      ? Buffer.alloc(0)
      : kind === 'truncated'
        ? clip.subarray(0, 30_000)
        : kind === 'too-large'
          ? Buffer.alloc((MAX_UPLOAD_MB + 1) * 1024 * 1024, 7)
          : kind === 'pixel-bomb'
            ? pixelBomb()
            : clip;
  form.append('video', new Blob([Uint8Array.from(file)]), 'clip.mp4');
  form.append('fps', kind === 'bad-field' ? 'fast' : '10');
  form.append('maxFrames', String(FRAMES));
  const res = await fetch(`${url}/api/upload-video-with-pose`, { method: 'POST', body: form });
  const body = (await res.json().catch(() => null)) as { error?: { code?: string } } | null;
  return { status: res.status, code: body?.error?.code, body };
}

/**
 * Sends the multipart head and half the file, then destroys the socket (status 0: no answer, as
 * intended), or with `stall` sends nothing more and waits for the server's answer (408).
 */
function hangUp(url: string, clip: Buffer, { stall = false } = {}): Promise<Answer> {
  const boundary = 'soakBoundary7MA4YWxkTrZu0gW';
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="video"; filename="clip.mp4"\r\nContent-Type: video/mp4\r\n\r\n`,
  );
  return new Promise((resolve) => {
    const req = http.request(new URL('/api/upload-video-with-pose', url), {
      method: 'POST',
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': String(head.length + clip.length + 64) },
    });
    req.on('error', () => undefined);
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => {
        let code: string | undefined;
        try {
          code = (JSON.parse(text) as { error?: { code?: string } }).error?.code;
        } catch {
          code = undefined;
        }
        req.destroy();
        resolve({ status: res.statusCode ?? -1, code });
      });
    });
    req.write(head);
    req.write(clip.subarray(0, clip.length >> 1), () => {
      if (stall) return; // the server's rate floor answers
      setTimeout(() => {
        req.destroy();
        resolve({ status: 0 });
      }, 20);
    });
  });
}

// --- the server process and its figures -------------------------------------------------------

export interface ServerProcess {
  child: ChildProcess;
  pid: number;
  url: string;
  exited: Promise<unknown>;
}

/** Starts the server on a free loopback port and resolves once it answers (LOG_LEVEL=warn keeps it quiet). */
export async function startServer(env: Record<string, string>): Promise<ServerProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [MAIN], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const { pid } = child;
  if (pid === undefined) throw new Error(`could not start the server (${process.execPath}): no process id`);
  let out = '';
  const keep = (d: Buffer) => {
    if (out.length < 64 * 1024) out += d;
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  let gone = false;
  const exited = new Promise((r) => child.once('exit', r)).then(() => (gone = true));
  const url = `http://127.0.0.1:${port}`;
  const end = Date.now() + 60_000;
  for (;;) {
    if (gone) throw new Error(`the server exited before listening:\n${out}`);
    try {
      await fetch(`${url}/health/live`);
      return { child, pid, url, exited };
    } catch {
      if (Date.now() > end) {
        child.kill('SIGKILL'); // never leave it running (its workers exit with it)
        throw new Error(`the server did not listen within 60 s:\n${out}`);
      }
      await sleep(100);
    }
  }
}

async function health(url: string): Promise<{ status: string; workers: { pid: number | null; restarts: number }[] }> {
  const res = await fetch(`${url}/health`);
  return (await res.json()) as { status: string; workers: { pid: number | null; restarts: number }[] };
}

/** The server's V8 heap in use, from GET /metrics (prom-client's default metrics) when it has one. */
async function heapUsedKb(url: string): Promise<number | null> {
  try {
    const res = await fetch(`${url}/metrics`);
    if (!res.ok) return null;
    const m = /^nodejs_heap_size_used_bytes (\d+(?:\.\d+)?)/m.exec(await res.text());
    return m ? Math.round(Number(m[1]) / 1024) : null;
  } catch {
    return null;
  }
}

async function figures(server: ServerProcess, tempRoot: string): Promise<ProcessFigures> {
  const { pid } = server;
  const h = await health(server.url);
  const workerPids = h.workers.map((w) => w.pid).filter((p): p is number => p !== null);
  return {
    serverRssKb: rssKb(pid),
    serverFds: process.platform === 'linux' ? readdirSync(`/proc/${pid}/fd`).filter((fd) => isOpen(pid, fd)).length : null,
    children: process.platform === 'linux' ? childrenByName(pid) : null,
    workersRssKb: workerPids.reduce((sum, p) => sum + safeRssKb(p), 0),
    restarts: h.workers.reduce((n, w) => n + w.restarts, 0),
    tempEntries: readdirSync(tempRoot).length,
  };
}

function isOpen(pid: number, fd: string): boolean {
  try {
    readlinkSync(`/proc/${pid}/fd/${fd}`);
    return true;
  } catch {
    return false;
  }
}

function rssKb(pid: number): number {
  if (process.platform === 'linux') return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
  return NaN;
}

function safeRssKb(pid: number): number {
  try {
    return rssKb(pid) || 0;
  } catch {
    return 0;
  }
}

function childrenByName(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) !== pid || fields[0] === 'Z') continue;
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      out[comm] = (out[comm] ?? 0) + 1;
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Lets the last request's cleanup, ffmpeg's exit and the client's sockets finish. */
async function settle(): Promise<void> {
  await sleep(1500);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves once `check` is true (its errors count as not yet), or throws after `ms`. */
export async function until(check: () => Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    if (Date.now() > end) throw new Error(`not ready within ${ms} ms`);
    await sleep(200);
  }
}

export const mb = (kb: number) => `${(kb / 1024).toFixed(1)} MB`;

export function fmt(f: ProcessFigures): string {
  const children = f.children
    ? Object.entries(f.children)
        .map(([n, c]) => `${c} ${n}`)
        .join(', ')
    : 'n/a';
  return `server RSS ${mb(f.serverRssKb)}, fds ${f.serverFds ?? 'n/a'}, children [${children}], workers RSS ${mb(f.workersRssKb)}, restarts ${f.restarts}, temp entries ${f.tempEntries}`;
}

/** The report as the lines printed by the command (and quoted in the README). */
export function reportLines(r: SoakReport): string[] {
  const sign = (n: number | null, unit = '') => (n === null ? 'n/a' : `${n >= 0 ? '+' : ''}${n}${unit}`);
  return [
    `soak: ${r.uploads} sequential uploads (${Object.entries(r.outcomes)
      .map(([k, n]) => `${n} ${k}`)
      .join(', ')}), ${r.framesPosed} frames posed, ${r.workers} workers, model ${r.model}, ${(r.ms / 1000).toFixed(0)} s`,
    `  before: ${fmt(r.before)}`,
    `  after:  ${fmt(r.after)}`,
    `  deltas: server RSS ${sign(Math.round(r.deltas.serverRssKb / 102.4) / 10, ' MB')} (second half ${sign(Math.round((r.after.serverRssKb - r.midServerRssKb) / 102.4) / 10, ' MB')}, peak ${mb(r.peakServerRssKb)}; bound +${mb(r.bounds.serverRssKb)}), fds ${sign(r.deltas.serverFds)} (bound +${r.bounds.serverFds}), workers RSS ${sign(Math.round(r.deltas.workersRssKb / 102.4) / 10, ' MB')} (bound +${mb(r.bounds.workersRssKb)}), temp entries ${r.deltas.tempEntries}, restarts ${sign(r.deltas.restarts)}`,
    r.violations.length ? `soak: FAILED: ${r.violations.join('; ')}` : 'soak: PASS (no growth past the bounds)',
  ];
}

/** `--name VALUE` from the command line, or the fallback. */
export function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const uploads = Number(arg('uploads', '200'));
  const workers = Number(arg('workers', '2'));
  if (!Number.isInteger(uploads) || uploads < 1 || !Number.isInteger(workers) || workers < 1) {
    console.error('usage: node dist/scripts/soak.js [--uploads N] [--workers N] [--model NAME] [--json FILE]');
    process.exit(2);
  }
  runSoak({ uploads, workers, model: arg('model', 'synthetic'), log: (l) => console.log(l) })
    .then((report) => {
      for (const line of reportLines(report)) console.log(line);
      const json = arg('json', '');
      if (json) writeFileSync(json, `${JSON.stringify(report, null, 2)}\n`);
      process.exit(report.violations.length ? 1 : 0);
    })
    .catch((err) => {
      console.error(`soak: could not run: ${(err as Error).message}`);
      process.exit(1);
    });
}
