/**
 * Tracing's parts, without workers: when the SDK starts (telemetry.ts), the W3C traceparent a span is
 * sent as and the context one is read back into (spans.ts), the worker's reported span exported as the
 * child of its batch with the worker's ids and times (and refused when it answers another span), the
 * trace ids on log lines (logger.ts). The SDK runs with an in-memory exporter.
 */
import { context, ROOT_CONTEXT, type Span, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkerSpan } from '../../protocol/index.js';
import { traceIds } from '../logger.js';
import { activeTraceparent, contextOf, hrTimeOf, inSpan, recordWorkerSpan, startSpan, traceparentOf } from '../spans.js';
import { startTelemetry, type Telemetry, tracingWanted } from '../telemetry.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN_ID = '00f067aa0ba902b7';

describe('tracingWanted: only when the environment asks', () => {
  it.each([
    [{}, false],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://localhost:4318' }, true],
    [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://localhost:4318/v1/traces' }, true],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: ' ' }, false],
    [{ OTEL_TRACES_EXPORTER: 'console' }, true],
    [{ OTEL_TRACES_EXPORTER: 'otlp,console' }, true],
    [{ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://localhost:4318' }, false],
    [{ OTEL_SDK_DISABLED: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://localhost:4318' }, false],
    [{ OTEL_SDK_DISABLED: 'false', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://localhost:4318' }, true],
    [{ OTEL_SERVICE_NAME: 'posepool' }, false],
  ] as [NodeJS.ProcessEnv, boolean][])('%j → %s', (env, wanted) => {
    expect(tracingWanted(env)).toBe(wanted);
  });
});

describe('tracing off: nothing recorded, nothing sent', () => {
  it('starts nothing, makes non-recording spans, gives no traceparent and no log ids', async () => {
    expect(await startTelemetry({})).toBeNull();
    const span = startSpan('batch');
    expect(span.isRecording()).toBe(false);
    expect(traceparentOf(span)).toBeUndefined();
    await inSpan('pose', {}, async () => {
      expect(activeTraceparent()).toBeUndefined();
      expect(traceIds()).toEqual({});
    });
  });

  it('reads a traceparent back into a remote parent, and anything else into no parent', () => {
    const parent = trace.getSpanContext(contextOf(`00-${TRACE_ID}-${SPAN_ID}-01`));
    expect(parent).toEqual({ traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 1, isRemote: true });
    for (const bad of [undefined, '', 'garbage', `00-${'0'.repeat(32)}-${SPAN_ID}-01`, `00-${TRACE_ID.toUpperCase()}-${SPAN_ID}-01`]) {
      expect(contextOf(bad)).toBe(ROOT_CONTEXT);
    }
  });

  it('reads Unix nanoseconds written as decimal strings, beyond 2^53', () => {
    expect(hrTimeOf('1765071234567890123')).toEqual([1765071234, 567890123]);
    expect(hrTimeOf('0')).toEqual([0, 0]);
    for (const bad of ['', '-1', '1.5', '1e9', 'x']) expect(hrTimeOf(bad)).toBeNull();
  });
});

describe('tracing on (in-memory exporter)', () => {
  const exporter = new InMemorySpanExporter();
  const processor = new SimpleSpanProcessor(exporter);
  let telemetry: Telemetry;
  beforeAll(async () => {
    telemetry = (await startTelemetry({}, { spanProcessors: [processor] }))!;
  });
  /** The spans ended so far (an export may wait for the resource's detected attributes). */
  const finished = async () => {
    await processor.forceFlush();
    return exporter.getFinishedSpans();
  };
  /** Forgets the spans ended so far, those still being exported included. */
  const forget = async () => {
    await processor.forceFlush();
    exporter.reset();
  };
  afterAll(async () => {
    await telemetry?.shutdown();
  });

  /** A batch span, and the span a worker would report for its traceparent. */
  function batchAndReport(): { batch: Span; reported: WorkerSpan } {
    const batch = startSpan('batch');
    const { traceId, spanId } = batch.spanContext();
    const now = BigInt(Date.now()) * 1_000_000n;
    const reported: WorkerSpan = {
      name: 'worker.detect',
      traceId,
      spanId: 'b7ad6b7169203331',
      parentSpanId: spanId,
      startTimeUnixNano: String(now + 1_000_000n),
      endTimeUnixNano: String(now + 41_234_567n),
      attributes: { 'posepool.frames': 4, 'process.pid': 4242, 'posepool.model': 'synthetic' },
    };
    return { batch, reported };
  }

  it('sends a sampled span as a W3C traceparent; its log lines carry its ids', async () => {
    await inSpan('batch', {}, async (span) => {
      const { traceId, spanId } = span.spanContext();
      expect(traceparentOf(span)).toBe(`00-${traceId}-${spanId}-01`);
      expect(activeTraceparent()).toBe(traceparentOf(span));
      expect(traceIds()).toEqual({ traceId, spanId });
    });
    expect(traceIds()).toEqual({});
  });

  it('exports the worker span as the child of the batch, with the worker’s id, times and attributes', async () => {
    await forget();
    const { batch, reported } = batchAndReport();
    recordWorkerSpan(batch, reported);
    batch.end();
    const spans = await finished();
    expect(spans.map((s) => s.name).sort()).toEqual(['batch', 'worker.detect']);
    const worker = spans.find((s) => s.name === 'worker.detect')!;
    expect(worker.spanContext().spanId).toBe('b7ad6b7169203331');
    expect(worker.spanContext().traceId).toBe(batch.spanContext().traceId);
    expect(worker.parentSpanContext?.spanId).toBe(batch.spanContext().spanId);
    const start = BigInt(reported.startTimeUnixNano);
    expect(worker.startTime).toEqual([Number(start / 1_000_000_000n), Number(start % 1_000_000_000n)]);
    expect(worker.duration).toEqual([0, 40_234_567]);
    expect(worker.attributes).toEqual(reported.attributes);
    // The worker's id was for that one span only: the next spans get fresh random ids.
    const next = startSpan('next');
    expect(next.spanContext().spanId).not.toBe('b7ad6b7169203331');
    expect(next.spanContext().spanId).toMatch(/^[0-9a-f]{16}$/);
    next.end();
  });

  it('drops a report that does not answer this batch (another trace or parent, a bad id or bad times)', async () => {
    const spoilers: ((r: WorkerSpan) => void)[] = [
      (r) => {
        r.traceId = TRACE_ID;
      },
      (r) => {
        r.parentSpanId = SPAN_ID;
      },
      (r) => {
        r.spanId = 'not-an-id';
      },
      (r) => {
        r.startTimeUnixNano = 'soon';
      },
      (r) => {
        r.endTimeUnixNano = '1';
      },
    ];
    for (const spoil of spoilers) {
      await forget();
      const { batch, reported } = batchAndReport();
      spoil(reported);
      recordWorkerSpan(batch, reported);
      batch.end();
      expect((await finished()).map((s) => s.name)).toEqual(['batch']);
    }
  });

  it('continues a trace from a traceparent (a durable job run on another replica)', async () => {
    await forget();
    await inSpan('segment', { parent: contextOf(`00-${TRACE_ID}-${SPAN_ID}-01`) }, async () => {
      expect(context.active()).not.toBe(ROOT_CONTEXT);
    });
    const [segment] = await finished();
    expect(segment.spanContext().traceId).toBe(TRACE_ID);
    expect(segment.parentSpanContext).toMatchObject({ spanId: SPAN_ID, isRemote: true });
  });

  it('marks a span failed by what was thrown, except what the caller expects', async () => {
    await forget();
    await expect(inSpan('probe', {}, () => Promise.reject(new Error('bad file')))).rejects.toThrow('bad file');
    await expect(inSpan('segment', { expected: () => true }, () => Promise.reject(new Error('later')))).rejects.toThrow('later');
    const spans = await finished();
    const [probe, segment] = ['probe', 'segment'].map((name) => spans.find((s) => s.name === name)!);
    expect(probe.status).toEqual({ code: 2, message: 'bad file' });
    expect(probe.events.map((e) => e.name)).toEqual(['exception']);
    expect(segment.status.code).toBe(0);
  });
});
