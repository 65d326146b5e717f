/**
 * The HTTP application, kept apart from the process (main.ts) so tests drive it with inject()
 * or a real listen() on an ephemeral port.
 */
import { randomUUID } from 'node:crypto';
import multipart from '@fastify/multipart';
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import { PROTOCOL } from '../protocol/index.js';
import type { PosePool } from '../workers/index.js';
import { Admission } from './admission.js';
import type { Config } from './config.js';
import { ApiError, isApiError, rawErrorResponse } from './errors.js';
import { createJobQueue } from './jobs/create-job-queue.js';
import type { JobQueue } from './jobs/job-queue.js';
import type { MediaTools } from './media/media-tools.js';
import { ServerMetrics } from './metrics.js';
import { registerDocs } from './routes/docs.js';
import { HEALTH_ROUTES, registerHealthRoutes } from './routes/health.js';
import { registerJobsRoutes } from './routes/jobs.js';
import { registerMetricsRoute } from './routes/metrics.js';
import { registerPageRoutes } from './routes/page.js';
import { registerUploadRoute } from './routes/upload-video-with-pose.js';
import { registerUploadsRoutes } from './routes/uploads.js';
import type { Telemetry } from './telemetry.js';
import { watchBody } from './upload/body-watch.js';
import { FIELD_VALUE_MAX_BYTES } from './upload/receive-upload.js';
import { ResumableStore } from './upload/tus-store.js';

/** How long the rest of a refused request's body is read and dropped before its connection goes. */
const REFUSED_BODY_MAX_MS = 30_000;

export interface ServerDeps {
  config: Config;
  pool: PosePool;
  tools: MediaTools;
  logger: Logger;
  /** Tracing (telemetry.ts), when on: its Fastify plugin is registered before anything else. */
  telemetry?: Pick<Telemetry, 'fastifyPlugin'> | null;
}

export interface PoseServer {
  app: FastifyInstance;
  admission: Admission;
  metrics: ServerMetrics;
  jobs: JobQueue;
  resumable: ResumableStore;
}

export async function buildServer(deps: ServerDeps): Promise<PoseServer> {
  const { config, pool, tools, logger } = deps;
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    genReqId: () => randomUUID(),
    // Headers (and the readiness check) come before the body; the body's own limits are in upload/body-watch.ts.
    requestTimeout: 0,
    // While closing, the onRequest hook below answers SHUTTING_DOWN in the catalogue's shape.
    return503OnClosing: false,
    // close() waits for in-flight requests and jobs (their onClose/preClose hooks) up to SHUTDOWN_GRACE_MS;
    // avvio's default 10 s would end a longer drain with an uncaught AVV_ERR_READY_TIMEOUT.
    pluginTimeout: Math.max(10_000, config.shutdownGraceMs + 15_000),
    // Errors the router raises before a route runs (a malformed %-escape, a path segment over 100 characters).
    frameworkErrors: (error, request, reply) => {
      const api = new ApiError(
        'BAD_REQUEST',
        error.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'a path segment is longer than 100 characters' : 'the URL is malformed',
      );
      void (reply as FastifyReply)
        .code(api.status)
        .header('x-request-id', String(request.id))
        .send(api.body(String(request.id)));
    },
    // Errors Node's HTTP parser raises before any request exists: answered on the socket, same shape.
    clientErrorHandler: (err: NodeJS.ErrnoException, socket) => {
      // As Node's own handler: nothing to say on a reset or gone socket, or once a response has begun.
      const inFlight = (socket as typeof socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
      if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
        socket.destroy();
        return;
      }
      const api =
        err.code === 'HPE_HEADER_OVERFLOW'
          ? new ApiError('HEADERS_TOO_LARGE', "the request's headers are over 16 KB")
          : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
            ? new ApiError('UPLOAD_TIMEOUT', "the request's headers did not arrive in time")
            : new ApiError('BAD_REQUEST', 'the request is not valid HTTP');
      // Written, then the socket goes (a client that never closes its side cannot keep it).
      socket.end(rawErrorResponse(api, randomUUID()), () => socket.destroy());
    },
  });
  // First, so that it sees every route and the request span is open before any hook runs.
  if (deps.telemetry) await app.register(deps.telemetry.fastifyPlugin);

  // A refused request whose body is still coming (BUSY or 401 before the body, a bad field mid-body):
  // Node reads and drops the rest so the client gets its answer, but within the body's rate floor and
  // at most REFUSED_BODY_MAX_MS, or the connection goes.
  app.addHook('onResponse', async (request) => {
    const socket = request.raw.socket;
    if (request.raw.complete || !socket || socket.destroyed) return;
    const watch = watchBody(socket, { ...config.upload, timeoutMs: Math.min(config.upload.timeoutMs, REFUSED_BODY_MAX_MS) });
    watch.broken.catch(() => socket.destroy());
    const stop = () => watch.stop();
    request.raw.once('end', stop);
    request.raw.once('close', stop);
  });

  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', async (request) => {
    if (closing && !HEALTH_ROUTES.has(request.routeOptions.url ?? '')) throw new ApiError('SHUTTING_DOWN', undefined, { retryAfterS: 5 });
  });
  const admission = new Admission(config.maxActiveVideos, config.maxQueuedVideos);
  const uploads = new Admission(config.maxActiveUploads, 0, 5, 'uploads');

  await app.register(multipart, {
    limits: {
      fileSize: config.maxUploadBytes,
      files: 1,
      fields: 16,
      fieldSize: FIELD_VALUE_MAX_BYTES,
      parts: 32,
      headerPairs: 64,
    },
  });

  app.addHook('onSend', async (request, reply, payload) => {
    reply.header('x-request-id', String(request.id));
    return payload;
  });

  // Operator and user features: OpenAPI first (it collects the routes), metrics, jobs, the page.
  const metrics = new ServerMetrics({ pool, admission, jobs: { counts: () => jobs.countsByState(), depth: () => jobs.queueDepth() } });
  const unwatch = metrics.watchPool(pool);
  app.addHook('onClose', async () => unwatch());
  const metered = metrics.meterPool(pool);
  const jobs = createJobQueue(
    config,
    { pool: metered, config, ffmpeg: tools.ffmpeg, observer: metrics },
    { admission, log: app.log, ffprobe: tools.ffprobe, webhookObserver: metrics },
  );
  await registerDocs(app);
  registerMetricsRoute(app, metrics);

  registerHealthRoutes(app, pool, { testDouble: Boolean(PROTOCOL.models[config.model]?.testDouble), stopping: () => closing, jobs });
  // Resumable uploads, swept at start and then every quarter of UPLOAD_EXPIRY_S (1 s to 10 min): an untaken
  // upload lives UPLOAD_EXPIRY_S; a taken one no longer than its job could run (JOB_TIMEOUT_MS), and a margin.
  const resumable = new ResumableStore(config.resumable.dir, {
    expiryMs: config.resumable.expiryMs,
    takenMaxMs: config.jobs.timeoutMs + config.resumable.expiryMs,
    log: app.log,
    observer: metrics,
  });
  const stopSweep = resumable.sweepEvery(Math.max(1000, Math.min(config.resumable.expiryMs / 4, 10 * 60_000)));
  app.addHook('onClose', async () => stopSweep());

  registerUploadRoute(app, { config, pool: metered, tools, admission, uploads, observer: metrics });
  registerJobsRoutes(app, { config, pool: metered, tools, admission, uploads, queue: jobs, resumable, observer: metrics });
  registerPageRoutes(app);

  app.setNotFoundHandler((request, reply) => {
    const err = new ApiError('NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`);
    reply.code(err.status).send(err.body(String(request.id)));
  });

  app.setErrorHandler((error: FastifyError | ApiError, request, reply) => {
    const api = toApiError(error);
    if (api.status >= 500 && api.code === 'INTERNAL_ERROR') {
      request.log.error({ err: error }, 'unhandled error');
    } else {
      request.log.info({ code: api.code, status: api.status }, api.message);
    }
    if (api.retryAfterS !== undefined) reply.header('retry-after', String(api.retryAfterS));
    // A body that stalled is not read to its end: the connection goes with the answer.
    if (api.code === 'UPLOAD_TIMEOUT') reply.header('connection', 'close');
    reply.code(api.status).send(api.body(String(request.id)));
  });

  // Registered last: its encapsulated scope (a body parser of its own) keeps the error handler set when it loads.
  await registerUploadsRoutes(app, { config, store: resumable, uploads, observer: metrics });

  return { app, admission, metrics, jobs, resumable };
}

/** Anything thrown inside a request → one catalogue code. */
export function toApiError(error: unknown): ApiError {
  if (isApiError(error)) return error;
  const e = error as FastifyError;
  if (e?.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return new ApiError('MISSING_VIDEO', 'the body must be multipart/form-data with a "video" file field');
  }
  // A JSON or text body over the route's limit (16 KB for a JSON job, Fastify's 1 MB elsewhere), refused before it is read.
  if (e?.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new ApiError('BAD_REQUEST', 'the request body is larger than this route takes');
  if (e?.code === 'FST_REQ_FILE_TOO_LARGE' || e?.statusCode === 413) return new ApiError('UPLOAD_TOO_LARGE');
  if (e?.validation) return new ApiError('BAD_FIELD', e.message);
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new ApiError('BAD_REQUEST', 'the request is malformed');
  }
  return new ApiError('INTERNAL_ERROR', 'internal error (see the server log with this requestId)', { cause: error });
}
