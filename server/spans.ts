/**
 * posepool's own spans (upload, probe, pose, decode, batch, job, segment, merge), the W3C traceparent
 * that carries one to a worker or a job, and the worker's span that `detect` reports back.
 *
 * Only @opentelemetry/api here: while telemetry.ts has not started the SDK (tracing off), the tracer
 * makes non-recording spans, no context is kept, no traceparent is sent and nothing is exported.
 */
import { randomBytes } from 'node:crypto';
import {
  type Attributes,
  type Context,
  context,
  type HrTime,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  type SpanOptions,
  SpanStatusCode,
  TraceFlags,
  trace,
} from '@opentelemetry/api';
import type { IdGenerator } from '@opentelemetry/sdk-trace-base';
import type { WorkerSpan } from '../protocol/index.js';

/**
 * Starts a span with the SDK's tracer once telemetry.ts has started it, a no-op one until then. The tracer
 * is looked up each time (a map look-up), not kept: a kept one would stay bound to a stopped SDK.
 */
export function startSpan(name: string, options?: SpanOptions, parent?: Context): Span {
  return trace.getTracer('posepool').startSpan(name, options, parent);
}

export interface InSpanOptions {
  attributes?: Attributes;
  kind?: SpanKind;
  /** The parent; default the active context. */
  parent?: Context;
  /** Errors that end the work without it having failed (a job handed back to the queue): no error status. */
  expected?: (err: unknown) => boolean;
}

/** Runs `fn` inside a new span (the active one while it runs: its logs and child spans belong to it), ended when `fn` settles. */
export async function inSpan<T>(name: string, options: InSpanOptions, fn: (span: Span) => Promise<T>): Promise<T> {
  const parent = options.parent ?? context.active();
  const span = startSpan(name, { attributes: options.attributes, kind: options.kind }, parent);
  try {
    return await context.with(trace.setSpan(parent, span), () => fn(span));
  } catch (err) {
    if (!options.expected?.(err)) spanFailed(span, err);
    throw err;
  } finally {
    span.end();
  }
}

/** Marks a span failed by `err` (status ERROR with its message, and the exception as an event). */
export function spanFailed(span: Span, err: unknown): void {
  if (!span.isRecording()) return;
  const error = err instanceof Error ? err : new Error(String(err));
  span.recordException(error);
  span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/**
 * The W3C traceparent of a span that is recorded and sampled; undefined otherwise (tracing off, or
 * sampled out), so nothing is sent on and nobody downstream does any tracing work.
 */
export function traceparentOf(span: Span | undefined): string | undefined {
  if (!span?.isRecording()) return undefined;
  const { traceId, spanId, traceFlags } = span.spanContext();
  if (!trace.isSpanContextValid(span.spanContext()) || !(traceFlags & TraceFlags.SAMPLED)) return undefined;
  return `00-${traceId}-${spanId}-${traceFlags.toString(16).padStart(2, '0')}`;
}

/** The traceparent of the active span (see traceparentOf). */
export function activeTraceparent(): string | undefined {
  return traceparentOf(trace.getActiveSpan());
}

/**
 * A context whose parent is the (remote) span a traceparent names: work that continues a trace elsewhere
 * (a durable job's segment on any replica). No or a malformed traceparent: the root context (a new trace).
 */
export function contextOf(traceparent: string | undefined): Context {
  const match = traceparent ? TRACEPARENT.exec(traceparent) : null;
  if (!match) return ROOT_CONTEXT;
  const parent: SpanContext = { traceId: match[1], spanId: match[2], traceFlags: Number.parseInt(match[3], 16), isRemote: true };
  return trace.isSpanContextValid(parent) ? trace.setSpanContext(ROOT_CONTEXT, parent) : ROOT_CONTEXT;
}

/**
 * Span ids for the SDK (telemetry.ts passes this as NodeSDK's idGenerator): random, except for the one
 * span started inside `withSpanId`, which gets the id given (the worker's own).
 */
class ReportedSpanIds implements IdGenerator {
  private next: string | undefined;

  generateTraceId(): string {
    return randomHex(16);
  }

  generateSpanId(): string {
    const id = this.next;
    this.next = undefined;
    return id ?? randomHex(8);
  }

  /** Runs `start` (which starts exactly one span, synchronously) with `spanId` as that span's id. */
  withSpanId<T>(spanId: string, start: () => T): T {
    this.next = spanId;
    try {
      return start();
    } finally {
      this.next = undefined;
    }
  }
}

export const reportedSpanIds = new ReportedSpanIds();

function randomHex(bytes: number): string {
  for (;;) {
    const hex = randomBytes(bytes).toString('hex');
    if (!/^0+$/.test(hex)) return hex;
  }
}

const SPAN_ID = /^[0-9a-f]{16}$/;
const UNIX_NANOS = /^\d{1,20}$/;

/**
 * Exports the worker's span of a batch (the `span` of a detect result) as the child of that batch's span,
 * with the worker's own span id and wall-clock times.
 *
 * It is started through the tracer, under the batch span, with explicit start and end times, rather than
 * built by hand as a finished span and given to a span processor: so it goes through the same sampler,
 * limits, processors and exporter as every other span (whatever OTEL_TRACES_EXPORTER chose), and its
 * trace and parent are the batch span's by construction. The one thing the tracer would choose itself is
 * the span id: reportedSpanIds hands it the worker's, so the id in the worker's log line is the id in
 * the trace. A report that does not answer this batch's traceparent (another trace or parent) is dropped.
 */
export function recordWorkerSpan(batch: Span, reported: WorkerSpan | undefined): void {
  if (!reported || !batch.isRecording()) return;
  const parent = batch.spanContext();
  if (reported.traceId !== parent.traceId || reported.parentSpanId !== parent.spanId || !SPAN_ID.test(reported.spanId)) return;
  const start = hrTimeOf(reported.startTimeUnixNano);
  const end = hrTimeOf(reported.endTimeUnixNano);
  if (!start || !end || BigInt(reported.endTimeUnixNano) < BigInt(reported.startTimeUnixNano)) return;
  const span = reportedSpanIds.withSpanId(reported.spanId, () =>
    startSpan(
      reported.name,
      { kind: SpanKind.SERVER, startTime: start, attributes: primitiveAttributes(reported.attributes) },
      trace.setSpan(ROOT_CONTEXT, batch),
    ),
  );
  span.end(end);
}

/** [seconds, nanoseconds] of a Unix time in nanoseconds written as a decimal string. */
export function hrTimeOf(unixNanos: string): HrTime | null {
  if (typeof unixNanos !== 'string' || !UNIX_NANOS.test(unixNanos)) return null;
  const n = BigInt(unixNanos);
  return [Number(n / 1_000_000_000n), Number(n % 1_000_000_000n)];
}

function primitiveAttributes(attributes: WorkerSpan['attributes'] | undefined): Attributes {
  const out: Attributes = {};
  for (const [key, value] of Object.entries(attributes ?? {})) {
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') out[key] = value;
  }
  return out;
}
