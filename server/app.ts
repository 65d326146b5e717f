/**
 * The HTTP application, kept apart from the process (main.ts) so tests drive it with inject()
 * or a real listen() on an ephemeral port.
 */
import { randomUUID } from 'node:crypto';
import multipart from '@fastify/multipart';
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { PROTOCOL } from '../protocol/index.js';
import { Admission } from './admission.js';
import type { Config } from './config.js';
import { ApiError, isApiError } from './errors.js';
import type { MediaTools } from './media/media-tools.js';
import { JobStore } from './jobs/job-store.js';
import { ServerMetrics, type PoolEvents } from './metrics.js';
import { registerDocs } from './routes/docs.js';
import { registerHealthRoutes } from './routes/health.js';
import { registerJobsRoutes } from './routes/jobs.js';
import { registerMetricsRoute } from './routes/metrics.js';
import { registerPageRoutes } from './routes/page.js';
import { registerUploadRoute } from './routes/upload-video-with-pose.js';
import type { ServerPool } from './server-pool.js';

export interface ServerDeps {
  config: Config;
  pool: ServerPool;
  tools: MediaTools;
  logger: Logger;
}

export interface PoseServer {
  app: FastifyInstance;
  admission: Admission;
  metrics: ServerMetrics;
  jobs: JobStore;
}

export async function buildServer(deps: ServerDeps): Promise<PoseServer> {
  const { config, pool, tools, logger } = deps;
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    genReqId: () => randomUUID(),
    // Headers (and the readiness check) come before the body; a slow upload must not be cut short.
    requestTimeout: 0,
    return503OnClosing: true,
  });
  const admission = new Admission(config.maxActiveVideos, config.maxQueuedVideos);
  const uploads = new Admission(config.maxActiveUploads, 0, 5, 'uploads');

  await app.register(multipart, {
    limits: {
      fileSize: config.maxUploadBytes,
      files: 1,
      fields: 16,
      fieldSize: 1024,
      parts: 32,
      headerPairs: 64,
    },
  });

  app.addHook('onSend', async (request, reply, payload) => {
    reply.header('x-request-id', String(request.id));
    return payload;
  });

  // Operator and user features (issue 7): OpenAPI first (it collects the routes), metrics, jobs, the page.
  const jobs = new JobStore(config.jobs);
  const metrics = new ServerMetrics({ pool, admission, jobs: () => jobs.countsByState() });
  if (isPoolEvents(pool)) {
    const unwatch = metrics.watchPool(pool);
    app.addHook('onClose', async () => unwatch());
  }
  const metered = metrics.meterPool(pool);
  await registerDocs(app);
  registerMetricsRoute(app, metrics);

  registerHealthRoutes(app, pool, { testDouble: Boolean(PROTOCOL.models[config.model]?.testDouble) });
  registerUploadRoute(app, { config, pool: metered, tools, admission, uploads, observer: metrics });
  registerJobsRoutes(app, { config, pool: metered, tools, admission, uploads, store: jobs, observer: metrics });
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

  return { app, admission, metrics, jobs };
}

function isPoolEvents(pool: ServerPool): pool is ServerPool & PoolEvents {
  const p = pool as Partial<PoolEvents>;
  return typeof p.on === 'function' && typeof p.off === 'function';
}

/** Anything thrown inside a request → one catalogue code. */
export function toApiError(error: unknown): ApiError {
  if (isApiError(error)) return error;
  const e = error as FastifyError;
  if (e?.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return new ApiError('MISSING_VIDEO', 'the body must be multipart/form-data with a "video" file field');
  }
  if (e?.code === 'FST_REQ_FILE_TOO_LARGE' || e?.statusCode === 413) return new ApiError('UPLOAD_TOO_LARGE');
  if (e?.validation) return new ApiError('BAD_FIELD', e.message);
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new ApiError('BAD_REQUEST', 'the request is malformed');
  }
  return new ApiError('INTERNAL_ERROR', 'internal error (see the server log with this requestId)', { cause: error });
}
