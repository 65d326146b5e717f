/** The one pino logger of the process; worker and request loggers are its children. */
import { context, trace } from '@opentelemetry/api';
import { type DestinationStream, type Logger, pino } from 'pino';

export interface LoggerOptions {
  /** Tracing is on (telemetry.ts): each line logged inside a span carries its traceId and spanId. */
  traceIds?: boolean;
  /** Where lines go (stdout by default; tests capture them). */
  destination?: DestinationStream;
}

export function createLogger(level: string, opts: LoggerOptions = {}): Logger {
  return pino(
    {
      level,
      base: { service: 'posepool' },
      redact: { paths: ['req.headers.authorization'], censor: '[redacted]' },
      // Only while tracing: without it no line pays for the look-up.
      ...(opts.traceIds ? { mixin: traceIds } : {}),
    },
    opts.destination,
  );
}

/** The active span's ids, so a log line leads to its trace (and a trace to its log lines); {} outside a span. */
export function traceIds(): { traceId?: string; spanId?: string } {
  const span = trace.getSpan(context.active());
  if (!span) return {};
  const ids = span.spanContext();
  return trace.isSpanContextValid(ids) ? { traceId: ids.traceId, spanId: ids.spanId } : {};
}
