/**
 * OpenTelemetry traces end to end, in process: the real app and real Python workers (the synthetic
 * double), spans caught by an in-memory exporter (telemetry.ts started as main.ts starts it, with the
 * exporter swapped). One upload is one trace, request → handler → upload, probe, pose → decode and
 * one batch per round trip → the worker's own span, exported with the id the worker reported. A job
 * continues the trace of its POST (in memory, and on Redis). With tracing off (the default) no
 * traceparent is sent, no worker reports a span, the plugin is not registered and no log line has a trace id.
 * Last, the real process (main.ts) with OTEL_EXPORTER_OTLP_ENDPOINT: the spans reach an OTLP/HTTP receiver,
 * the last of them at SIGTERM.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { HrTime } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DetectParams } from '../../../protocol/index.js';
import { startRedis, type TestRedis, whyNoRedis } from '../../../scripts/redis-process.js';
import type { PoolDetectResult } from '../../../workers/index.js';
import { describeIfReady } from '../../../workers/test/support/prerequisites.js';
import { startSpan } from '../../spans.js';
import { startTelemetry, type Telemetry } from '../../telemetry.js';
import type { JobBody } from '../support/api-bodies.js';
import { buildOnce, startServerProcess } from '../support/server-process.js';
import { FIXTURES, startTestServer, type TestServer, testPython, upload, videoForm, waitFor, waitReady } from '../support/test-server.js';

const CLIP = path.join(FIXTURES, 'messi-pan.mp4');
const ENV = { POSE_WORKERS: '2', POSE_BATCH_SIZE: '4', MAX_UPLOAD_MB: '2' };
/** 12 frames in batches of 4: three round trips. */
const FIELDS = { fps: '10', maxFrames: '12' };
/** Our span times come from Date.now() (whole ms) plus a monotonic duration, the worker's from time.time_ns(): equal to within this. */
const CLOCK_SLACK_MS = 2;

/** What the server sent to its workers and what they answered, batch by batch. */
function recordDetects(server: TestServer): { sent: DetectParams[]; got: PoolDetectResult[] } {
  const record = { sent: [] as DetectParams[], got: [] as PoolDetectResult[] };
  const detect = server.pool.detect.bind(server.pool);
  server.pool.detect = async (params, opts) => {
    record.sent.push(params);
    const result = await detect(params, opts);
    record.got.push(result);
    return result;
  };
  return record;
}

const ms = (t: HrTime) => t[0] * 1e3 + t[1] / 1e6;
const id = (s: ReadableSpan) => s.spanContext().spanId;
const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;
const childrenOf = (spans: ReadableSpan[], parent: ReadableSpan) => spans.filter((s) => parentOf(s) === id(parent));
const named = (spans: ReadableSpan[], name: string) => spans.filter((s) => s.name === name);
function one(spans: ReadableSpan[], name: string): ReadableSpan {
  const found = named(spans, name);
  expect(found.map((s) => s.name)).toEqual([name]);
  return found[0];
}

/** The trace as an indented tree with durations, children by start time. */
function drawTree(spans: ReadableSpan[]): string {
  const lines: string[] = [];
  const draw = (span: ReadableSpan, depth: number) => {
    const attrs = ['posepool.batch.index', 'posepool.decode.frames', 'posepool.worker.id', 'posepool.frames', 'posepool.upload.bytes']
      .filter((k) => span.attributes[k] !== undefined)
      .map((k) => `${k.split('.').pop()}=${span.attributes[k]}`);
    lines.push(`${'  '.repeat(depth)}${span.name}  ${ms(span.duration).toFixed(1)} ms${attrs.length ? `  (${attrs.join(', ')})` : ''}`);
    for (const child of childrenOf(spans, span).sort((a, b) => ms(a.startTime) - ms(b.startTime))) draw(child, depth + 1);
  };
  for (const root of spans.filter((s) => !spans.some((p) => id(p) === parentOf(s)))) draw(root, 0);
  return lines.join('\n');
}

/** pose → decode and its batches → one worker span each, the worker's ids and times; returns the batches. */
function expectPipeline(spans: ReadableSpan[], pose: ReadableSpan, got: PoolDetectResult[], frames: number): ReadableSpan[] {
  const under = childrenOf(spans, pose);
  const decode = one(under, 'decode');
  expect(decode.attributes['posepool.decode.frames']).toBe(frames);
  const batches = named(under, 'batch').sort(
    (a, b) => Number(a.attributes['posepool.batch.index']) - Number(b.attributes['posepool.batch.index']),
  );
  expect(under.map((s) => s.name).sort()).toEqual([...batches.map(() => 'batch'), 'decode']);
  expect(batches.map((b) => b.attributes['posepool.batch.index'])).toEqual([...Array(Math.ceil(frames / 4)).keys()]);
  for (const batch of batches) {
    expect(batch.attributes).toMatchObject({ 'posepool.batch.outcome': 'posed', 'posepool.batch.attempts': 1 });
    expect(batch.attributes['posepool.worker.pid']).toEqual(expect.any(Number));
    const [worker, ...more] = childrenOf(spans, batch);
    expect(more).toEqual([]);
    expect(worker.name).toBe('worker.detect');
    // Exactly the span the worker reported for this batch: its id, its pid, inside the round trip.
    const reported = got.find((r) => r.span?.spanId === id(worker))?.span;
    expect(reported).toBeDefined();
    expect(reported!.parentSpanId).toBe(id(batch));
    expect(worker.attributes['process.pid']).toBe(batch.attributes['posepool.worker.pid']);
    expect(worker.attributes['posepool.frames']).toBe(batch.attributes['posepool.batch.frames']);
    expect(ms(worker.startTime)).toBeGreaterThanOrEqual(ms(batch.startTime) - CLOCK_SLACK_MS);
    expect(ms(worker.endTime)).toBeGreaterThanOrEqual(ms(worker.startTime));
    expect(ms(worker.endTime)).toBeLessThanOrEqual(ms(batch.endTime) + CLOCK_SLACK_MS);
  }
  return batches;
}

/**
 * POSTs an 8-frame job and waits for the span named `last` to end: the detects it sent, its id, the spans of the
 * POST's trace and the POST's handler span.
 */
async function postTracedJob(server: TestServer, exporter: InMemorySpanExporter, last: string) {
  const { got } = recordDetects(server);
  const posted = await fetch(`${server.url}/api/jobs`, { method: 'POST', body: videoForm(CLIP, { fps: '10', maxFrames: '8' }) });
  expect(posted.status).toBe(202);
  const jobId = ((await posted.json()) as JobBody).id;
  const spans = await waitFor(async () => {
    const finished = exporter.getFinishedSpans();
    return finished.some((s) => s.name === last) ? finished : undefined;
  }, 30_000);
  const post = one(spans, 'POST /api/jobs');
  const inTrace = spans.filter((s) => s.spanContext().traceId === post.spanContext().traceId);
  const [handler] = childrenOf(inTrace, post);
  return { got, jobId, inTrace, handler };
}

describe('tracing off (the default: no OTEL_* settings)', () => {
  let server: TestServer;
  beforeAll(async () => {
    expect(await startTelemetry({})).toBeNull();
    server = await startTestServer(ENV);
    await waitReady(server.url);
  });
  afterAll(async () => {
    await server?.close();
  });

  it('sends no traceparent, gets no worker span, makes no span and logs no trace id', async () => {
    const { sent, got } = recordDetects(server);
    const res = await upload(server.url, videoForm(CLIP, FIELDS));
    expect(res.status).toBe(200);
    expect(res.json.frames).toHaveLength(12);
    expect(sent).toHaveLength(3);
    for (const params of sent) expect(Object.keys(params).sort()).toEqual(['frames', 'options', 'requestId']);
    for (const result of got) expect(result.span).toBeUndefined();
    expect(server.app.hasPlugin('@fastify/otel')).toBe(false);
    expect(startSpan('probe').isRecording()).toBe(false);
    expect(server.logs.filter((l) => l.includes('"traceId"'))).toEqual([]);
  });
});

describe('tracing on (in-memory exporter)', () => {
  const exporter = new InMemorySpanExporter();
  let telemetry: Telemetry;
  let server: TestServer;
  beforeAll(async () => {
    telemetry = (await startTelemetry({}, { spanProcessors: [new SimpleSpanProcessor(exporter)] }))!;
    server = await startTestServer(ENV, { telemetry });
    await waitReady(server.url);
  });
  afterAll(async () => {
    await server?.close();
    await telemetry?.shutdown();
  });

  it('one upload is one trace: POST → handler → upload, probe, pose → decode and batches → the workers’ spans', async () => {
    exporter.reset();
    const { sent, got } = recordDetects(server);
    const res = await upload(server.url, videoForm(CLIP, FIELDS));
    expect(res.status).toBe(200);
    const spans = await waitFor(async () => {
      const finished = exporter.getFinishedSpans();
      return finished.some((s) => s.name === 'POST /api/upload-video-with-pose') ? finished : undefined;
    }, 5_000);

    expect(new Set(spans.map((s) => s.spanContext().traceId)).size).toBe(1);
    const request = one(spans, 'POST /api/upload-video-with-pose');
    expect(request.parentSpanContext).toBeUndefined();
    expect(request.attributes).toMatchObject({ 'http.route': '/api/upload-video-with-pose', 'http.response.status_code': 200 });
    const [handler, ...others] = childrenOf(spans, request);
    expect(others).toEqual([]);
    expect(handler.name).toBe('handler');
    const steps = childrenOf(spans, handler);
    expect(steps.map((s) => s.name).sort()).toEqual(['pose', 'probe', 'upload']);
    const [uploadSpan, probe, pose] = ['upload', 'probe', 'pose'].map((name) => one(steps, name));
    // In order, to the clocks' precision (a span's start can be whole milliseconds).
    expect(ms(uploadSpan.endTime)).toBeLessThanOrEqual(ms(probe.startTime) + CLOCK_SLACK_MS);
    expect(ms(probe.endTime)).toBeLessThanOrEqual(ms(pose.startTime) + CLOCK_SLACK_MS);
    expect(probe.attributes).toMatchObject({ 'posepool.video.width': 548, 'posepool.video.height': 342, 'posepool.video.codec': 'h264' });
    expect(pose.attributes).toMatchObject({ 'posepool.frames': 12, 'posepool.batches': 3, 'posepool.frames_failed': 0 });
    const batches = expectPipeline(spans, pose, got, 12);
    // Each batch's own traceparent went to the worker, and nothing else was exported.
    expect(sent.map((p) => p.traceparent).sort()).toEqual(batches.map((b) => `00-${b.spanContext().traceId}-${id(b)}-01`).sort());
    expect(spans).toHaveLength(1 + 1 + 3 + 1 + 2 * batches.length);

    // Log lines logged inside the request carry its trace id.
    const traceId = request.spanContext().traceId;
    const lines = server.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((r) => r.reqId === res.json.id);
    const inside = lines.filter((r) => r.msg === 'video received' || String(r.msg).startsWith('processed '));
    expect(inside).toHaveLength(2);
    for (const line of inside) expect(line.traceId).toBe(traceId);

    console.info(`[figures] trace of one upload of messi-pan.mp4 (12 frames, batches of 4, 2 synthetic workers):\n${drawTree(spans)}`);
  });

  it('a job (memory engine) continues the trace of its POST', async () => {
    exporter.reset();
    const { got, jobId, inTrace, handler } = await postTracedJob(server, exporter, 'job');
    expect(
      childrenOf(inTrace, handler)
        .map((s) => s.name)
        .sort(),
    ).toEqual(['job', 'probe', 'upload']);
    const job = one(inTrace, 'job');
    expect(job.attributes).toMatchObject({ 'posepool.job.id': jobId, 'posepool.job.state': 'succeeded' });
    expectPipeline(inTrace, one(childrenOf(inTrace, job), 'pose'), got, 8);
  });
});

describeIfReady('tracing on, jobs on Redis (in-memory exporter)', whyNoRedis(), () => {
  const exporter = new InMemorySpanExporter();
  let telemetry: Telemetry;
  let server: TestServer;
  let redis: TestRedis | undefined;
  let storage: string | undefined;
  beforeAll(async () => {
    telemetry = (await startTelemetry({}, { spanProcessors: [new SimpleSpanProcessor(exporter)] }))!;
    redis = await startRedis();
    storage = mkdtempSync(path.join(os.tmpdir(), 'e2e-scratch-storage-'));
    server = await startTestServer({ ...ENV, REDIS_URL: redis.url, POSE_STORAGE_DIR: storage }, { telemetry });
    await waitReady(server.url);
  });
  afterAll(async () => {
    await server?.close();
    await redis?.dispose();
    if (storage) rmSync(storage, { recursive: true, force: true });
    await telemetry?.shutdown();
  });

  it('the segment and the merge, run from the queue, continue the POST’s trace (carried in the job data)', async () => {
    const { got, jobId, inTrace, handler } = await postTracedJob(server, exporter, 'merge');
    const segment = one(inTrace, 'segment');
    const merge = one(inTrace, 'merge');
    expect(parentOf(segment)).toBe(id(handler));
    expect(parentOf(merge)).toBe(id(handler));
    expect(segment.attributes).toMatchObject({ 'posepool.job.id': jobId, 'posepool.segment.index': 0, 'posepool.segment.of': 1 });
    expect(ms(merge.startTime)).toBeGreaterThanOrEqual(ms(segment.endTime) - CLOCK_SLACK_MS);
    expectPipeline(inTrace, one(childrenOf(inTrace, segment), 'pose'), got, 8);
  });
});

/** An OTLP/HTTP receiver (JSON encoding) on loopback: the spans posted to /v1/traces, with their resource's service.name. */
interface OtlpSpan {
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  service: string;
}
async function startReceiver(): Promise<{ url: string; spans: OtlpSpan[]; server: Server }> {
  const spans: OtlpSpan[] = [];
  type Body = {
    resourceSpans: {
      resource: { attributes: { key: string; value: { stringValue?: string } }[] };
      scopeSpans: { spans: Omit<OtlpSpan, 'service'>[] }[];
    }[];
  };
  const server = createServer((req, res) => {
    let text = '';
    req.on('data', (chunk) => (text += chunk));
    req.on('end', () => {
      if (req.url === '/v1/traces') {
        for (const rs of (JSON.parse(text) as Body).resourceSpans) {
          const service = rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue ?? '';
          for (const ss of rs.scopeSpans) for (const span of ss.spans) spans.push({ ...span, service });
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, spans, server };
}

describe('the server process with OTEL_EXPORTER_OTLP_ENDPOINT', () => {
  beforeAll(() => buildOnce(), 120_000);

  it('exports the upload’s trace over OTLP/HTTP, the spans still buffered flushed at SIGTERM', async () => {
    const receiver = await startReceiver();
    const temp = mkdtempSync(path.join(os.tmpdir(), 'e2e-scratch-otlp-'));
    const server = await startServerProcess({
      POSE_PYTHON: testPython(),
      POSE_MODEL: 'synthetic',
      POSE_WORKERS: '1',
      POSE_TEMP_DIR: temp,
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      // Nothing is exported on the batch processor's schedule: only the flush at shutdown can deliver.
      OTEL_BSP_SCHEDULE_DELAY: '600000',
    });
    try {
      await waitReady(server.url, 60_000);
      const res = await upload(server.url, videoForm(CLIP, { maxFrames: '8' }));
      expect(res.status).toBe(200);
      expect(receiver.spans).toEqual([]);
      server.child.kill('SIGTERM');
      expect((await server.exited).code).toBe(0);
      const names = receiver.spans.map((s) => s.name).sort();
      expect(names).toEqual(['POST /api/upload-video-with-pose', 'batch', 'decode', 'handler', 'pose', 'probe', 'upload', 'worker.detect']);
      expect(new Set(receiver.spans.map((s) => s.traceId)).size).toBe(1);
      expect(new Set(receiver.spans.map((s) => s.service))).toEqual(new Set(['posepool']));
      const batch = receiver.spans.find((s) => s.name === 'batch')!;
      expect(receiver.spans.find((s) => s.name === 'worker.detect')!.parentSpanId).toBe(batch.spanId);
      const traceId = receiver.spans[0].traceId;
      expect(server.output()).toContain('"msg":"tracing on: spans exported with OpenTelemetry"');
      expect(server.output()).toContain(`"traceId":"${traceId}"`);
    } finally {
      server.child.kill('SIGKILL');
      await new Promise((r) => receiver.server.close(r));
      rmSync(temp, { recursive: true, force: true });
    }
  });
});
