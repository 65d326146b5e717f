/**
 * Traces over OTLP (OpenTelemetry's NodeSDK), started by main.ts before the app is built, and only when
 * asked for: OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), or OTEL_TRACES_EXPORTER
 * naming an exporter; OTEL_SDK_DISABLED=true wins. Otherwise nothing is loaded or registered: the
 * @opentelemetry/api calls in spans.ts and logger.ts stay no-ops and no traceparent reaches a worker.
 *
 * Nothing is monkey-patched, so no `--import` hook is needed in ESM: Fastify is traced by @fastify/otel,
 * registered as the app's first plugin (buildServer), and the pipeline by its own spans (spans.ts).
 * Exporter, protocol, sampler and resource come from the standard OTEL_* variables, read by the SDK.
 * Traces only: metrics stay on GET /metrics (Prometheus), logs on stdout (with trace ids).
 */
import { context, propagation, trace } from '@opentelemetry/api';
import type { SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { FastifyPluginCallback } from 'fastify';
import { HEALTH_ROUTES } from './routes/health.js';
import { reportedSpanIds } from './spans.js';

/** Polled by probes and scrapers every few seconds: traced, they would bury the uploads. */
const UNTRACED_ROUTES = new Set([...HEALTH_ROUTES, '/metrics']);

/** How long shutdown waits for the last spans to be exported. */
const FLUSH_MS = 5_000;

export interface Telemetry {
  /** @fastify/otel: one `request` span per HTTP request, the handler's span inside it. */
  fastifyPlugin: FastifyPluginCallback;
  /** Where spans go, for the start-up log line. */
  exporter: { traces: string; endpoint: string | null; protocol: string };
  /** Exports the spans not yet sent (within FLUSH_MS), then unregisters the SDK (SIGTERM path). */
  shutdown(): Promise<void>;
}

/** Tracing was asked for in the environment. */
export function tracingWanted(env: NodeJS.ProcessEnv): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return false;
  const exporters = (env.OTEL_TRACES_EXPORTER ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (exporters.length > 0) return !exporters.every((e) => e === 'none');
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim());
}

/**
 * Starts the SDK when tracing is wanted (null otherwise). `spanProcessors` replace the exporter the
 * environment names (tests pass an in-memory one, and tracing is then on whatever the environment says).
 */
export async function startTelemetry(
  env: NodeJS.ProcessEnv = process.env,
  opts: { spanProcessors?: SpanProcessor[] } = {},
): Promise<Telemetry | null> {
  if (!opts.spanProcessors && !tracingWanted(env)) return null;
  // Loaded here, not at the top: without tracing the SDK is never loaded.
  const [{ NodeSDK }, { FastifyOtelInstrumentation }] = await Promise.all([import('@opentelemetry/sdk-node'), import('@fastify/otel')]);
  const fastifyOtel = new FastifyOtelInstrumentation({
    ignorePaths: ({ url }) => UNTRACED_ROUTES.has(url.split('?')[0]),
    // Hooks (auth, headers, metrics) take microseconds; their spans would outnumber the work's.
    instrumentHooks: false,
    // Names as OpenTelemetry's HTTP conventions have them ("POST /api/jobs"), not "request" for every route;
    // the handler's span is "handler", not the chain of plugin names.
    requestHook: (span, request) => {
      if (request.routeOptions.url) span.updateName(`${request.method} ${request.routeOptions.url}`);
    },
    lifecycleHook: (span, info) => {
      if (info.hookName === 'handler') span.updateName('handler');
    },
  });
  const named = Boolean(env.OTEL_SERVICE_NAME?.trim()) || /(^|,)\s*service\.name=/.test(env.OTEL_RESOURCE_ATTRIBUTES ?? '');
  const sdk = new NodeSDK({
    serviceName: named ? undefined : 'posepool',
    spanProcessors: opts.spanProcessors,
    instrumentations: [fastifyOtel],
    // The worker's span keeps the id the worker gave it (spans.ts, recordWorkerSpan).
    idGenerator: reportedSpanIds,
    // Traces only (the SDK would otherwise also start OTLP metrics and logs exporters).
    metricReaders: [],
    logRecordProcessors: [],
  });
  sdk.start();
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() || null;
  return {
    fastifyPlugin: fastifyOtel.plugin(),
    exporter: {
      traces: opts.spanProcessors ? 'in-process' : env.OTEL_TRACES_EXPORTER?.trim() || 'otlp',
      endpoint,
      protocol: env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL?.trim() || env.OTEL_EXPORTER_OTLP_PROTOCOL?.trim() || 'http/protobuf',
    },
    async shutdown() {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([sdk.shutdown().catch(() => {}), new Promise((r) => (timer = setTimeout(r, FLUSH_MS)))]);
      clearTimeout(timer);
      fastifyOtel.disable();
      trace.disable();
      context.disable();
      propagation.disable();
    },
  };
}
