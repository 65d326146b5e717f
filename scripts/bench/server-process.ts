/**
 * The real server (dist/server/main.js) as a child process on an ephemeral loopback port, and an
 * HTTP client that times an upload the way a user sees it: request sent → upload written → response
 * headers → body received → JSON parsed. node:http, not fetch: fetch's 300 s header timeout would
 * cut off a long video.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { ApiErrorBody } from '../../server/errors.js';
import type { PoseResponse } from '../../server/pipeline/pose-response.js';
import type { BenchContext } from './context.js';
import { PeakSampler } from './proc-memory.js';

export interface BenchServer {
  url: string;
  pid: number;
  child: ChildProcess;
  output(): string;
  /** Worker process ids from /health. */
  workerPids(): Promise<number[]>;
  stop(): Promise<void>;
}

interface HealthBody {
  status: string;
  ready: number;
  desired: number;
  workers: { id: string; state: string; pid: number | null; lastError: { summary?: string; message: string } | null }[];
}

/**
 * The Node flags `npm start` gives the server (package.json scripts.start = "node [flags] dist/server/main.js"),
 * so the bench measures the process `npm start` runs.
 */
export function startScriptNodeFlags(repo: string): string[] {
  try {
    const start: string = JSON.parse(readFileSync(path.join(repo, 'package.json'), 'utf8')).scripts?.start ?? '';
    const words = start.trim().split(/\s+/);
    if (words[0] !== 'node') return [];
    const main = words.findIndex((w) => w.endsWith('.js'));
    return main > 1 ? words.slice(1, main).filter((w) => w.startsWith('--')) : [];
  } catch {
    return [];
  }
}

export async function startBenchServer(ctx: BenchContext, env: Record<string, string>, readyTimeoutMs = 180_000): Promise<BenchServer> {
  const child = spawn(process.execPath, [...startScriptNodeFlags(ctx.repo), path.join(ctx.repo, 'dist', 'server', 'main.js')], {
    cwd: ctx.repo,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...ctx.serverEnv, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const { pid } = child;
  if (pid === undefined) throw new Error(`could not start the server (${process.execPath}): no process id`);
  let out = '';
  const keep = (d: Buffer) => {
    out = (out + d.toString('utf8')).slice(-20_000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise<string>((resolve) => child.once('exit', (code, signal) => resolve(`${code ?? signal}`)));

  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not listen within 30 s:\n${out}`)), 30_000);
    const check = () => {
      const m = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        child.stdout.off('data', check);
        resolve(m[1]);
      }
    };
    child.stdout.on('data', check);
    void exited.then((how) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${how}) before listening:\n${out}`));
    });
  });

  const health = async (): Promise<HealthBody> => JSON.parse((await request(url, 'GET', '/health')).body.toString('utf8'));
  // Every worker ready (not just the minimum): the measurement is of the configured pool.
  const until = Date.now() + readyTimeoutMs;
  for (;;) {
    const h = await health();
    if (h.status === 'ready' && h.ready === h.desired) break;
    if (h.status === 'unavailable') {
      child.kill('SIGKILL');
      throw new Error(`workers cannot start: ${JSON.stringify(h.workers.map((w) => w.lastError))}`);
    }
    if (Date.now() > until) {
      child.kill('SIGKILL');
      throw new Error(`workers not all ready within ${readyTimeoutMs} ms: ${JSON.stringify(h)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  let stopped: Promise<void> | null = null;
  return {
    url,
    pid,
    child,
    output: () => out,
    async workerPids() {
      return (await health()).workers.map((w) => w.pid).filter((p): p is number => typeof p === 'number');
    },
    stop() {
      stopped ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
        await exited;
        clearTimeout(timer);
      })();
      return stopped;
    },
  };
}

export interface UploadTiming {
  status: number;
  /** Request start → response parsed. */
  wallMs: number;
  /** Request start → the last upload byte handed to the socket. */
  uploadMs: number;
  /** Request start → response headers. */
  headersMs: number;
  /** Response headers → last body byte. */
  bodyMs: number;
  /** JSON.parse of the body. */
  parseMs: number;
  bodyBytes: number;
  /** The parsed body: the pose result on a 200, the error otherwise. */
  json: PoseResponse | ApiErrorBody;
}

export interface UploadFields {
  fps?: number;
  maxFrames?: number;
  tracking?: boolean;
  smoothing?: boolean;
}

/** POST /api/upload-video-with-pose with the file and fields, timed. */
export async function uploadVideo(url: string, file: string, fields: UploadFields): Promise<UploadTiming> {
  const boundary = `----posepool-bench-${randomBytes(8).toString('hex')}`;
  const parts: Buffer[] = [];
  for (const [name, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`));
  }
  parts.push(
    Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="video"; filename="${path.basename(file)}"\r\nContent-Type: application/octet-stream\r\n\r\n`,
    ),
    readFileSync(file),
    Buffer.from(`\r\n--${boundary}--\r\n`),
  );
  const body = Buffer.concat(parts);
  const t0 = performance.now();
  const res = await request(url, 'POST', '/api/upload-video-with-pose', body, {
    'content-type': `multipart/form-data; boundary=${boundary}`,
  });
  const t = performance.now();
  const json = JSON.parse(res.body.toString('utf8'));
  const parsed = performance.now();
  return {
    status: res.status,
    wallMs: parsed - t0,
    uploadMs: res.sentAt - t0,
    headersMs: res.headersAt - t0,
    bodyMs: t - res.headersAt,
    parseMs: parsed - t,
    bodyBytes: res.body.length,
    json,
  };
}

function request(
  base: string,
  method: string,
  pathname: string,
  body?: Buffer,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Buffer; sentAt: number; headersAt: number }> {
  return new Promise((resolve, reject) => {
    const u = new URL(pathname, base);
    let sentAt = NaN;
    const req = http.request(
      {
        hostname: u.hostname,
        port: u.port,
        path: u.pathname,
        method,
        headers: { ...headers, ...(body ? { 'content-length': String(body.length) } : {}) },
      },
      (res) => {
        const headersAt = performance.now();
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.once('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), sentAt, headersAt }));
        res.once('error', reject);
      },
    );
    req.once('error', reject);
    req.once('finish', () => (sentAt = performance.now()));
    req.end(body);
  });
}

/** Server and worker peak memory while `fn` runs (sampled; the kernel's VmHWM where available). */
export async function withMemory<T>(
  server: BenchServer,
  fn: () => Promise<T>,
): Promise<{ value: T; serverPeakKb: number; workerPeakKb: number[] }> {
  const workers = await server.workerPids();
  const sampler = new PeakSampler(() => [server.pid, ...workers], 50).start();
  const value = await fn();
  const peaks = sampler.stop();
  return { value, serverPeakKb: peaks.get(server.pid) ?? NaN, workerPeakKb: workers.map((p) => peaks.get(p) ?? NaN) };
}
