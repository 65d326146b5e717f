/**
 * Webhooks of jobs end to end: a real server (synthetic test double) posts to a local receiver on
 * 127.0.0.1. Signed POSTs for succeeded, failed and cancelled jobs; retries after 500s with one
 * delivery id; a 302 not followed; callbackUrls refused at acceptance, and an allowed name that
 * resolves to a loopback address refused at send time; on Redis, two replicas send each event once.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type TestRedis, whyNoRedis } from '../../../scripts/redis-process.js';
import { describeIfReady } from '../../../workers/test/support/prerequisites.js';
import { verifyWebhookSignature } from '../../jobs/webhook-signature.js';
import type { WebhookBody } from '../../jobs/webhooks.js';
import type { JobBody } from '../support/api-bodies.js';
import { getJob, postJob } from '../support/jobs-api.js';
import { FIXTURES, startTestServer, type TestServer, tempDirs, upload, videoForm, waitFor, waitReady } from '../support/test-server.js';
import { type ReceivedHook, startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.js';

const SECRET = 'whsec-test-0123456789abcdef';
const CLIP = path.join(FIXTURES, 'vtest-3s.mp4');
/** 60 frames (2 s at 30 fps): with the double at 100 ms per frame on one worker, a job that outlives a 3 s JOB_TIMEOUT_MS. */
const LONG = { clip: path.join(FIXTURES, 'messi-pan.mp4'), fields: { fps: '30' } };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function webhookEnv(receiver: WebhookReceiver): Record<string, string> {
  return {
    WEBHOOK_SECRET: SECRET,
    // localhost is allowed by name, but it resolves to a loopback address: refused when sending.
    WEBHOOK_ALLOWED_HOSTS: `127.0.0.1:${receiver.port},localhost:${receiver.port}`,
    WEBHOOK_MAX_ATTEMPTS: '3',
    WEBHOOK_BACKOFF_INITIAL_MS: '100',
    WEBHOOK_BACKOFF_MAX_MS: '200',
    WEBHOOK_TIMEOUT_MS: '3000',
  };
}

/** A job posted with a callbackUrl (202 expected). */
async function jobWithCallback(url: string, callbackUrl: string, fields: Record<string, string> = { maxFrames: '4' }, clip = CLIP) {
  const posted = await postJob(url, videoForm(clip, { ...fields, callbackUrl }));
  expect(posted.status, JSON.stringify(posted.json)).toBe(202);
  return posted.json;
}

/** The hook's body, after checking its headers and signature. */
function verified(hook: ReceivedHook): WebhookBody {
  expect(hook.headers['content-type']).toBe('application/json');
  expect(hook.headers['x-posepool-delivery']).toMatch(UUID);
  const signature = hook.headers['x-posepool-signature'] as string;
  expect(signature).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
  expect(verifyWebhookSignature(SECRET, signature, hook.body)).toBe(true);
  const body = JSON.parse(hook.body) as WebhookBody;
  expect(hook.headers['x-posepool-event']).toBe(body.type);
  return body;
}

/** posepool_webhook_deliveries_total by outcome, from one server's /metrics. */
async function attempts(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const counts: Record<string, number> = {};
  for (const m of text.matchAll(/^posepool_webhook_deliveries_total\{outcome="(\w+)"\} (\S+)$/gm)) counts[m[1]] = Number(m[2]);
  return counts;
}

const delta = (after: Record<string, number>, before: Record<string, number>) =>
  Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)]));

/** The server's log lines about this job's webhook, parsed. */
function webhookLines(server: TestServer, jobId: string): Record<string, unknown>[] {
  return server.logs.filter((l) => l.includes('"msg":"webhook ') && l.includes(jobId)).map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('webhooks (memory engine, synthetic backend)', () => {
  let receiver: WebhookReceiver;
  let server: TestServer;
  beforeAll(async () => {
    receiver = await startWebhookReceiver();
    server = await startTestServer({ POSE_WORKERS: '2', POSE_BATCH_SIZE: '4', ...webhookEnv(receiver) });
    await waitReady(server.url);
  });
  afterAll(async () => {
    await server?.close();
    await receiver?.close();
  });

  it('a succeeded job: one signed POST naming the job; the signature fails for another secret or body', async () => {
    const hookPath = '/hooks/a?token=receiver-secret-token';
    const job = await jobWithCallback(server.url, receiver.url(hookPath));
    const [hook] = await receiver.waitFor(hookPath, 1);
    const body = verified(hook);
    expect(body).toMatchObject({
      type: 'job.succeeded',
      job: {
        id: job.id,
        state: 'succeeded',
        progress: { done: 4, expected: 4, fraction: 1 },
        links: { self: `/api/jobs/${job.id}`, events: `/api/jobs/${job.id}/events` },
      },
    });
    expect(body.job).not.toHaveProperty('result');
    expect(Math.abs(Date.parse(body.sentAt) - hook.at)).toBeLessThan(5000);
    expect(hook.headers['user-agent']).toBe('posepool-webhooks');
    const signature = hook.headers['x-posepool-signature'] as string;
    expect(verifyWebhookSignature('another-secret-0123456789', signature, hook.body)).toBe(false);
    expect(verifyWebhookSignature(SECRET, signature, hook.body.replace('"succeeded"', '"failed"'))).toBe(false);

    // The receiver fetches the result from links.self: the job is there, succeeded.
    const got = await fetch(`${server.url}${body.job.links.self}`);
    expect(((await got.json()) as JobBody).result?.frames).toHaveLength(4);

    await sleep(500);
    expect(receiver.to(hookPath)).toHaveLength(1);
    const [line] = webhookLines(server, job.id);
    expect(line).toMatchObject({ outcome: 'delivered', attempt: 1, of: 3, status: 200, delivery: hook.headers['x-posepool-delivery'] });
    expect(line.ms).toEqual(expect.any(Number));
    // The log names the receiver's origin, never its path or query (a token may be there).
    expect(server.logs.some((l) => l.includes('receiver-secret-token'))).toBe(false);
  });

  it('500, 500, then 200: three attempts of one delivery after the backoff, each logged and counted in /metrics', async () => {
    const before = await attempts(server.url);
    const hookPath = '/hooks/b';
    receiver.script(hookPath, 500, 500);
    const job = await jobWithCallback(server.url, receiver.url(hookPath));
    const hooks = await receiver.waitFor(hookPath, 3);
    const bodies = hooks.map(verified);
    expect(new Set(hooks.map((h) => h.headers['x-posepool-delivery'])).size).toBe(1);
    expect(bodies.every((b) => b.type === 'job.succeeded' && b.job.id === job.id)).toBe(true);
    // Backoff: 100 ms, then 200 ms (WEBHOOK_BACKOFF_INITIAL_MS doubling).
    expect(hooks[1].at - hooks[0].at).toBeGreaterThanOrEqual(90);
    expect(hooks[2].at - hooks[1].at).toBeGreaterThanOrEqual(190);
    await waitFor(async () => webhookLines(server, job.id).length === 3, 5000);
    expect(webhookLines(server, job.id).map((l) => [l.attempt, l.outcome, l.status])).toEqual([
      [1, 'retry', 500],
      [2, 'retry', 500],
      [3, 'delivered', 200],
    ]);
    expect(delta(await attempts(server.url), before)).toEqual({ delivered: 1, retry: 2, failed: 0, refused: 0 });
    const text = await (await fetch(`${server.url}/metrics`)).text();
    expect(text).toMatch(/^posepool_webhook_attempt_duration_seconds_count\{outcome="retry"\} [1-9]/m);
  });

  it('a 302 is not followed: each attempt fails, the last gives up, and the redirect target gets nothing', async () => {
    const before = await attempts(server.url);
    const hookPath = '/hooks/d';
    const redirect = { status: 302, headers: { location: receiver.url('/elsewhere') } };
    receiver.script(hookPath, redirect, redirect, redirect);
    const job = await jobWithCallback(server.url, receiver.url(hookPath));
    await receiver.waitFor(hookPath, 3);
    await waitFor(async () => webhookLines(server, job.id).length === 3, 5000);
    expect(webhookLines(server, job.id).map((l) => [l.outcome, l.status])).toEqual([
      ['retry', 302],
      ['retry', 302],
      ['failed', 302],
    ]);
    await sleep(300);
    expect(receiver.to(hookPath)).toHaveLength(3);
    expect(receiver.to('/elsewhere')).toHaveLength(0);
    expect(delta(await attempts(server.url), before)).toEqual({ delivered: 0, retry: 2, failed: 1, refused: 0 });
  });

  it('a 4xx other than 408/429 is final: one attempt', async () => {
    const hookPath = '/hooks/gone';
    receiver.script(hookPath, 410);
    const job = await jobWithCallback(server.url, receiver.url(hookPath));
    await receiver.waitFor(hookPath, 1);
    await waitFor(async () => webhookLines(server, job.id).length === 1, 5000);
    await sleep(400);
    expect(receiver.to(hookPath)).toHaveLength(1);
    expect(webhookLines(server, job.id)).toMatchObject([{ outcome: 'failed', status: 410, attempt: 1 }]);
  });

  it('a bad callbackUrl is refused at acceptance (4xx, field callbackUrl): no job, no file, no request', async () => {
    await waitFor(async () => tempDirs().length === 0, 10_000);
    const hooksBefore = receiver.hooks.length;
    const jobsBefore = await jobCount(server.url);
    const cases: [string, number, string][] = [
      [`http://127.0.0.1:${receiver.port + 1}/hook`, 400, 'CALLBACK_NOT_ALLOWED'], // allowed host, another port
      ['https://example.com/hook', 400, 'CALLBACK_NOT_ALLOWED'],
      [`http://[::1]:${receiver.port}/hook`, 400, 'CALLBACK_NOT_ALLOWED'],
      [`ftp://127.0.0.1:${receiver.port}/hook`, 400, 'BAD_FIELD'],
      [`http://user:pass@127.0.0.1:${receiver.port}/hook`, 400, 'BAD_FIELD'],
      ['/relative/hook', 400, 'BAD_FIELD'],
    ];
    for (const [callbackUrl, status, code] of cases) {
      const res = await postJob(server.url, videoForm(CLIP, { maxFrames: '2', callbackUrl }));
      expect(res.status, callbackUrl).toBe(status);
      expect(res.json.error, callbackUrl).toMatchObject({ code, field: 'callbackUrl' });
    }
    const notAllowed = await postJob(server.url, videoForm(CLIP, { callbackUrl: 'https://example.com/hook' }));
    expect(notAllowed.json.error.message).toMatch(/WEBHOOK_ALLOWED_HOSTS/);
    // The synchronous route answers with the result itself: no callbackUrl there.
    const sync = await upload(server.url, videoForm(CLIP, { maxFrames: '2', callbackUrl: receiver.url('/hooks/sync') }));
    expect(sync.status).toBe(400);
    expect(sync.json.error).toMatchObject({ code: 'BAD_FIELD', field: 'callbackUrl' });
    expect(sync.json.error.message).toMatch(/jobs API/);

    expect(await jobCount(server.url)).toBe(jobsBefore);
    expect(tempDirs()).toHaveLength(0);
    await sleep(200);
    expect(receiver.hooks.length).toBe(hooksBefore);
  });

  it('an allowed name that resolves to a loopback address (localhost) is refused when sending: nothing is sent', async () => {
    const before = await attempts(server.url);
    const job = await jobWithCallback(server.url, `http://localhost:${receiver.port}/hooks/c`);
    await waitFor(async () => webhookLines(server, job.id).length === 1, 20_000);
    const [line] = webhookLines(server, job.id);
    expect(line).toMatchObject({ outcome: 'refused', attempt: 1 });
    expect(String(line.reason)).toMatch(/non-public address/);
    await sleep(400);
    expect(receiver.to('/hooks/c')).toHaveLength(0);
    expect(webhookLines(server, job.id)).toHaveLength(1); // not tried again
    expect(delta(await attempts(server.url), before)).toEqual({ delivered: 0, retry: 0, failed: 0, refused: 1 });
  });
});

/** Jobs the memory engine holds (posepool_jobs summed over states). */
async function jobCount(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return [...text.matchAll(/^posepool_jobs\{state="\w+"\} (\S+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
}

describe('webhooks of failed and cancelled jobs (memory engine)', () => {
  let receiver: WebhookReceiver;
  let server: TestServer;
  beforeAll(async () => {
    receiver = await startWebhookReceiver();
    server = await startTestServer({
      POSE_WORKERS: '1',
      POSE_BATCH_SIZE: '2',
      POSE_SYNTHETIC_FAULTS: 'infer_ms=100',
      JOB_TIMEOUT_MS: '3000',
      ...webhookEnv(receiver),
    });
    await waitReady(server.url);
  });
  afterAll(async () => {
    await server?.close();
    await receiver?.close();
  });

  it('a job that fails (JOB_TIMEOUT_MS) sends job.failed with its error; a DELETE after the end sends nothing more', async () => {
    const job = await jobWithCallback(server.url, receiver.url('/hooks/failed'), LONG.fields, LONG.clip);
    const [hook] = await receiver.waitFor('/hooks/failed', 1, 20_000);
    const body = verified(hook);
    expect(body).toMatchObject({ type: 'job.failed', job: { id: job.id, state: 'failed', error: { code: 'TIMEOUT' } } });
    expect(body.job.progress.done).toBeLessThan(60);
    expect((await fetch(`${server.url}/api/jobs/${job.id}`, { method: 'DELETE' })).status).toBe(204);
    await sleep(500);
    expect(receiver.to('/hooks/failed')).toHaveLength(1);
  });

  it('DELETE of a running job sends job.cancelled, once', async () => {
    const job = await jobWithCallback(server.url, receiver.url('/hooks/cancelled'), LONG.fields, LONG.clip);
    await waitFor(async () => (await getJob(server.url, job.id)).json.progress.done > 0, 10_000);
    expect((await fetch(`${server.url}/api/jobs/${job.id}`, { method: 'DELETE' })).status).toBe(204);
    const [hook] = await receiver.waitFor('/hooks/cancelled', 1);
    const body = verified(hook);
    expect(body).toMatchObject({ type: 'job.cancelled', job: { id: job.id, state: 'cancelled', error: { code: 'CANCELLED' } } });
    expect(body.job.progress.done).toBeGreaterThan(0);
    expect(body.job.progress.done).toBeLessThan(60);
    await sleep(500);
    expect(receiver.to('/hooks/cancelled')).toHaveLength(1);
  });
});

describeIfReady('webhooks on Redis, two replicas', whyNoRedis(), () => {
  let redis: TestRedis;
  let storage: string;
  let receiver: WebhookReceiver;
  let a: TestServer;
  let b: TestServer;
  beforeAll(async () => {
    redis = await startRedis();
    storage = mkdtempSync(path.join(os.tmpdir(), 'e2e-scratch-storage-'));
    receiver = await startWebhookReceiver();
    const env = {
      REDIS_URL: redis.url,
      POSE_STORAGE_DIR: storage,
      POSE_WORKERS: '1',
      POSE_BATCH_SIZE: '2',
      POSE_SYNTHETIC_FAULTS: 'infer_ms=100',
      JOB_TIMEOUT_MS: '3000',
      ...webhookEnv(receiver),
    };
    [a, b] = await Promise.all([startTestServer(env), startTestServer(env)]);
    await Promise.all([waitReady(a.url), waitReady(b.url)]);
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await receiver?.close();
    await redis?.dispose();
    if (storage) rmSync(storage, { recursive: true, force: true });
  });

  /** Attempts over both replicas. */
  async function bothAttempts(): Promise<Record<string, number>> {
    const [x, y] = await Promise.all([attempts(a.url), attempts(b.url)]);
    return Object.fromEntries(Object.keys(x).map((k) => [k, x[k] + (y[k] ?? 0)]));
  }

  it('a job posted on one replica: its webhook is sent once, by one replica, signed', async () => {
    const before = await bothAttempts();
    const job = await jobWithCallback(a.url, receiver.url('/r/succeeded'));
    const [hook] = await receiver.waitFor('/r/succeeded', 1, 30_000);
    expect(verified(hook)).toMatchObject({ type: 'job.succeeded', job: { id: job.id, state: 'succeeded', progress: { done: 4 } } });
    await sleep(1500);
    expect(receiver.to('/r/succeeded')).toHaveLength(1);
    expect(delta(await bothAttempts(), before)).toEqual({ delivered: 1, retry: 0, failed: 0, refused: 0 });
    expect([...webhookLines(a, job.id), ...webhookLines(b, job.id)]).toHaveLength(1);
  });

  it('500 then 200: the queue tries again after the backoff, with the same delivery id', async () => {
    receiver.script('/r/retried', 500);
    const job = await jobWithCallback(b.url, receiver.url('/r/retried'));
    const hooks = await receiver.waitFor('/r/retried', 2, 30_000);
    expect(hooks.map(verified).every((body) => body.job.id === job.id)).toBe(true);
    expect(hooks[0].headers['x-posepool-delivery']).toBe(hooks[1].headers['x-posepool-delivery']);
    expect(hooks[1].at - hooks[0].at).toBeGreaterThanOrEqual(90);
    await sleep(1000);
    expect(receiver.to('/r/retried')).toHaveLength(2);
    const lines = [...webhookLines(a, job.id), ...webhookLines(b, job.id)].sort((x, y) => Number(x.attempt) - Number(y.attempt));
    expect(lines.map((l) => [l.attempt, l.outcome])).toEqual([
      [1, 'retry'],
      [2, 'delivered'],
    ]);
  });

  it('a failed job (JOB_TIMEOUT_MS) sends job.failed once', async () => {
    const job = await jobWithCallback(a.url, receiver.url('/r/failed'), LONG.fields, LONG.clip);
    const [hook] = await receiver.waitFor('/r/failed', 1, 30_000);
    expect(verified(hook)).toMatchObject({ type: 'job.failed', job: { id: job.id, state: 'failed', error: { code: 'TIMEOUT' } } });
    await sleep(1500);
    expect(receiver.to('/r/failed')).toHaveLength(1);
  });

  it('DELETE on the other replica sends job.cancelled once', async () => {
    const job = await jobWithCallback(a.url, receiver.url('/r/cancelled'), LONG.fields, LONG.clip);
    await waitFor(async () => (await getJob(b.url, job.id)).json.progress.done > 0, 20_000);
    expect((await fetch(`${b.url}/api/jobs/${job.id}`, { method: 'DELETE' })).status).toBe(204);
    const [hook] = await receiver.waitFor('/r/cancelled', 1, 30_000);
    const body = verified(hook);
    expect(body).toMatchObject({ type: 'job.cancelled', job: { id: job.id, state: 'cancelled', error: { code: 'CANCELLED' } } });
    expect(body.job.progress.done).toBeGreaterThan(0);
    await sleep(1500);
    expect(receiver.to('/r/cancelled')).toHaveLength(1);
  });
});
