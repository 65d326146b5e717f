/**
 * GET /metrics against a real server (synthetic test double, with one injected startup failure and
 * one injected frame error): every metric the issue names, with values that follow from what the
 * test did.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES, startTestServer, type TestServer, upload, videoForm, waitFor } from '../support/test-server.js';

/** One sample's value from the text format (labels given in any order), or undefined. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

describe('GET /metrics', () => {
  let server: TestServer;
  const marks = mkdtempSync(path.join(os.tmpdir(), 'metrics-faults-'));

  beforeAll(async () => {
    server = await startTestServer({
      POSE_WORKERS: '2',
      POSE_BATCH_SIZE: '4',
      POSE_BACKOFF_INITIAL_MS: '100',
      // One worker start fails once (RuntimeError in load); frame 3 of one request fails once.
      POSE_SYNTHETIC_FAULTS: `startup_crash,frame_error=3,once=${path.join(marks, 'mark')}`,
    });
    await waitFor(
      async () => {
        const h = await (await fetch(`${server.url}/health`)).json();
        return h.ready === 2;
      },
      60_000,
      100,
    );
  });
  afterAll(async () => {
    await server?.close();
    rmSync(marks, { recursive: true, force: true });
  });

  it('exposes workers, restarts and startup failures by type, frames, batches, queue, uploads, requests and jobs', async () => {
    const clip = path.join(FIXTURES, 'messi-pan.mp4');
    const res = await upload(server.url, videoForm(clip, { fps: '10' }));
    expect(res.status).toBe(200);
    expect(res.json.summary).toMatchObject({ framesSampled: 20, framesFailed: 1 });
    const job = await (await fetch(`${server.url}/api/jobs`, { method: 'POST', body: videoForm(clip, { maxFrames: '4' }) })).json();
    await waitFor(async () => (await (await fetch(`${server.url}/api/jobs/${job.id}`)).json()).state === 'succeeded', 20_000);
    await fetch(`${server.url}/no/such/route`);

    const scrape = await fetch(`${server.url}/metrics`);
    expect(scrape.status).toBe(200);
    expect(scrape.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await scrape.text();

    expect(sample(text, 'posepool_workers_ready')).toBe(2);
    expect(sample(text, 'posepool_workers_desired')).toBe(2);
    expect((sample(text, 'posepool_workers', { state: 'ready' }) ?? 0) + (sample(text, 'posepool_workers', { state: 'busy' }) ?? 0)).toBe(
      2,
    );
    expect(sample(text, 'posepool_worker_startup_failures_total', { type: 'RuntimeError' })).toBe(1);
    expect(sample(text, 'posepool_worker_restarts_total', { reason: 'RuntimeError' })).toBe(1);

    expect(sample(text, 'posepool_frames_processed_total')).toBe(19 + 4);
    expect(sample(text, 'posepool_frames_failed_total', { code: 'INFERENCE_FAILED' })).toBe(1);
    // 20 frames in batches of 4, plus the job's 4 frames in one batch.
    expect(sample(text, 'posepool_batch_duration_seconds_count', { outcome: 'ok' })).toBe(5);
    expect(sample(text, 'posepool_batch_duration_seconds_count', { outcome: 'frame_errors' })).toBe(1);
    expect(sample(text, 'posepool_batch_inference_seconds_count')).toBe(6);

    expect(sample(text, 'posepool_queue_depth')).toBe(0);
    expect(sample(text, 'posepool_videos_active')).toBe(0);
    expect(sample(text, 'posepool_videos_queued')).toBe(0);
    expect(sample(text, 'posepool_jobs', { state: 'succeeded' })).toBe(1);
    expect(sample(text, 'posepool_jobs', { state: 'running' })).toBe(0);

    const size = statSync(clip).size;
    expect(sample(text, 'posepool_upload_size_bytes_count')).toBe(2);
    expect(sample(text, 'posepool_upload_size_bytes_sum')).toBe(2 * size);

    const req = (route: string, method: string, status: string) =>
      sample(text, 'posepool_http_request_duration_seconds_count', { route, method, status_code: status });
    expect(req('/api/upload-video-with-pose', 'POST', '200')).toBe(1);
    expect(req('/api/jobs', 'POST', '202')).toBe(1);
    expect(req('/api/jobs/:id', 'GET', '200')).toBeGreaterThanOrEqual(1);
    expect(req('unmatched', 'GET', '404')).toBe(1);

    // prom-client's process metrics are there too.
    expect(sample(text, 'process_resident_memory_bytes')).toBeGreaterThan(0);
  });

  it('counts a crash of a ready worker as a restart, not a startup failure', async () => {
    const before = await (await fetch(`${server.url}/metrics`)).text();
    const pid = server.pool.health().workers[0].pid!;
    process.kill(pid, 'SIGKILL');
    await waitFor(async () => server.pool.health().ready === 2 && server.pool.health().workers[0].pid !== pid, 30_000, 100);
    const after = await (await fetch(`${server.url}/metrics`)).text();
    const restarts = (t: string) =>
      t
        .split('\n')
        .filter((l) => l.startsWith('posepool_worker_restarts_total{'))
        .reduce((n, l) => n + Number(l.split(' ')[1]), 0);
    expect(restarts(after)).toBe(restarts(before) + 1);
    expect(sample(after, 'posepool_worker_startup_failures_total', { type: 'RuntimeError' })).toBe(1);
  });
});
