/**
 * An in-process posepool (real Fastify app, real WorkerPool, real Python workers) on an
 * ephemeral loopback port, with its log lines captured for assertions.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { PoolHealth, WorkerHealth, WorkerLastError } from '../../../workers/index.js';
import { testPython as recordedTestPython } from '../../../workers/test/support/prerequisites.js';
import { buildServer } from '../../app.js';
import { type Config, loadConfig } from '../../config.js';
import { createPool } from '../../create-pool.js';
import { traceIds } from '../../logger.js';
import type { Telemetry } from '../../telemetry.js';
import { TEMP_PREFIX } from '../../upload/temp-dir.js';
import type { UploadBody } from './api-bodies.js';
import { findTools } from './tools.js';

export { FIXTURES, IMAGES } from './fixtures.js';

/** The interpreter the tests run workers with (the set-up's record; `python3` where there is none, and the test fails). */
export function testPython(): string {
  return recordedTestPython() ?? 'python3';
}

export interface TestServer {
  url: string;
  config: Config;
  logs: string[];
  pool: ReturnType<typeof createPool>;
  app: Awaited<ReturnType<typeof buildServer>>['app'];
  close(): Promise<void>;
}

/** Each test server keeps its request directories under a private root, so other processes' temp files don't count. */
const tempRoots: string[] = [];

/** `telemetry`: tracing on (telemetry.ts started by the test): the app registers its plugin and log lines carry trace ids, as main.ts does. */
export async function startTestServer(env: Record<string, string> = {}, opts: { telemetry?: Telemetry } = {}): Promise<TestServer> {
  const tempRoot = mkdtempSync(path.join(os.tmpdir(), 'posepool-test-root-'));
  tempRoots.push(tempRoot);
  const config = loadConfig({
    POSE_TEMP_DIR: tempRoot,
    POSE_PYTHON: testPython(),
    POSE_MODEL: 'synthetic',
    POSE_WORKERS: '2',
    POSE_THREADS: '1',
    LOG_LEVEL: 'debug',
    ...env,
  });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logs.push(...String(chunk).split('\n').filter(Boolean));
      cb();
    },
  });
  const logger = pino({ level: config.logLevel, ...(opts.telemetry ? { mixin: traceIds } : {}) }, sink);
  const pool = createPool(config, logger.child({ component: 'pool' }));
  pool.start();
  const { app } = await buildServer({ config, pool, tools: findTools(), logger, telemetry: opts.telemetry });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  let closed = false;
  return {
    url: `http://127.0.0.1:${port}`,
    config,
    logs,
    pool,
    app,
    async close() {
      if (closed) return;
      closed = true;
      await app.close();
      await pool.close({ graceMs: 2000 });
      rmSync(tempRoot, { recursive: true, force: true });
    },
  };
}

export async function waitFor<T>(fn: () => Promise<T | undefined | false>, timeoutMs: number, stepMs = 50): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** A worker of /health that has a cause (lastError). */
type FailedWorker = WorkerHealth & { lastError: WorkerLastError };

/** The /health body once it answers 503 with a cause (lastError) for every worker, within timeoutMs. */
export async function waitForUnavailable(url: string, timeoutMs: number): Promise<PoolHealth & { workers: FailedWorker[] }> {
  return waitFor(async () => {
    const res = await fetch(`${url}/health`);
    const body = (await res.json()) as PoolHealth;
    const { workers } = body;
    return res.status === 503 && workers.every((w): w is FailedWorker => Boolean(w.lastError)) ? { ...body, workers } : undefined;
  }, timeoutMs);
}

export async function waitReady(url: string, timeoutMs = 60_000): Promise<void> {
  await waitFor(async () => (await fetch(`${url}/health`)).status === 200, timeoutMs, 100);
}

export function videoForm(file: string, fields: Record<string, string> = {}, name = 'clip.mp4'): FormData {
  const form = new FormData();
  form.append('video', new Blob([readFileSync(file)]), name);
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  return form;
}

export interface UploadResult {
  status: number;
  headers: Headers;
  /** The parsed body (see UploadBody); null where the server broke the contract with a body that is not JSON (`text` has it). */
  json: UploadBody;
  text: string;
}

export async function upload(
  url: string,
  body: FormData | string | Buffer<ArrayBuffer>,
  headers: Record<string, string> = {},
): Promise<UploadResult> {
  const res = await fetch(`${url}/api/upload-video-with-pose`, { method: 'POST', body, headers });
  const text = await res.text();
  let json: UploadBody | null = null;
  try {
    json = JSON.parse(text) as UploadBody;
  } catch {
    /* not JSON */
  }
  return { status: res.status, headers: res.headers, json: json as UploadBody, text };
}

/** Request temp dirs currently left under the test servers' private roots. */
export function tempDirs(): string[] {
  return tempRoots.flatMap((root) =>
    existsSync(root)
      ? readdirSync(root)
          .filter((n) => n.startsWith(TEMP_PREFIX))
          .map((n) => path.join(root, n))
      : [],
  );
}
