/**
 * The jobs API, for videos too long to wait on one request:
 *   POST   /api/jobs              same multipart as the synchronous route (+ callbackUrl) → 202 { id, state, links }
 *   GET    /api/jobs/:id          state, progress, and the result once succeeded
 *   GET    /api/jobs/:id/events   server-sent events: `progress` on every change, `done` at the end
 *   DELETE /api/jobs/:id          cancels an unfinished job and forgets it
 * The upload is received, its fields checked and the file probed before the 202, so a bad upload
 * gets the same 4xx as the synchronous route; a job takes its admission place at once (BUSY when
 * there is none) and waits for its slot in the background. A callbackUrl gets a signed webhook when
 * the job ends (server/jobs/webhooks.ts).
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { PosePool } from '../../workers/index.js';
import { Admission } from '../admission.js';
import { errorResponses, jobFormSchema, jobParamsSchema, jobSchema } from '../api-schemas.js';
import type { Config } from '../config.js';
import { ApiError } from '../errors.js';
import { FINISHED_STATES, type JobSummary } from '../jobs/job.js';
import type { JobQueue, SubmittedJob } from '../jobs/job-queue.js';
import { checkCallbackUrl } from '../jobs/webhook-target.js';
import { sampleRate } from '../media/frame-source.js';
import type { MediaTools } from '../media/media-tools.js';
import { expectedFrames } from '../pipeline/pose-video.js';
import { type FramesObserver, unavailableError } from '../pipeline/pose-video-request.js';
import { requireMultipart } from '../upload/receive-upload.js';
import { receiveVideo, type UploadObserver } from '../upload/receive-video.js';
import { withTempDir } from '../upload/temp-dir.js';
import { bearerHook, checkBearer } from './auth.js';
import { multipartValidatorCompiler } from './docs.js';

export interface JobsRouteDeps {
  config: Config;
  pool: PosePool;
  tools: MediaTools;
  admission: Admission;
  /** Bodies being received (MAX_ACTIVE_UPLOADS). */
  uploads: Admission;
  queue: JobQueue;
  observer?: UploadObserver & FramesObserver;
}

const bearerOptional: { [label: string]: string[] }[] = [{ bearer: [] }, {}];
const HEARTBEAT_MS = 15_000;

export function registerJobsRoutes(app: FastifyInstance, deps: JobsRouteDeps): void {
  const { config, pool, admission, queue } = deps;
  const running = new Set<Promise<void>>();

  app.post(
    '/api/jobs',
    {
      schema: {
        tags: ['pose'],
        summary: 'Start a pose job (long videos): 202 with the job, then poll it or follow its events',
        consumes: ['multipart/form-data'],
        security: bearerOptional,
        body: jobFormSchema(config),
        response: { 202: jobSchema, ...errorResponses },
      },
      validatorCompiler: multipartValidatorCompiler(),
      onRequest: [bearerHook(config.apiToken), requireMultipart],
    },
    async (request: FastifyRequest, reply: FastifyReply) => {
      if (!pool.isAvailable()) throw unavailableError(pool);
      await queue.assertRoom();
      if (queue.admitsOnAcceptance) admission.assertRoom(); // BUSY before the body is read
      const id = randomUUID();
      const cancelUpload = new AbortController();
      const log = request.log.child({ jobId: id });

      return await new Promise((resolve, reject) => {
        // A refused upload is answered once its temporary directory is gone, not before.
        let refused: { err: unknown } | null = null;
        const lifetime = withTempDir(async (dir) => {
          let submitted: SubmittedJob;
          let slot: Promise<() => void> | undefined;
          try {
            // The body first (its own bound and rate floor), then (memory engine) a place among the videos.
            const admit = queue.admitsOnAcceptance
              ? () => {
                  slot = admission.tryEnter(cancelUpload.signal).slot;
                }
              : undefined;
            const received = await receiveVideo(request, dir, {
              config,
              tools: deps.tools,
              uploads: deps.uploads,
              observer: deps.observer,
              admit,
              callbackUrl: (raw) => checkCallbackUrl(raw, config.webhooks),
            });
            const f = received.fields;
            const expected = expectedFrames(received.video, sampleRate(f.fps, received.video), f.maxFrames);
            submitted = await queue.submit({ id, received, dir, expected, slot, cancelUpload, log });
          } catch (err) {
            cancelUpload.abort(err);
            if (slot) Admission.giveBack(slot);
            refused = { err };
            return;
          }
          reply.code(202).header('location', `/api/jobs/${id}`);
          resolve(submitted.view);
          await submitted.running;
        }, config.tempDir).then(
          () => {
            if (refused) reject(refused.err);
          },
          (err) => {
            // Only the temporary directory itself can fail here (the engine records its jobs' errors).
            log.error({ err }, 'job bookkeeping failed');
            reject(refused ? refused.err : err);
          },
        );
        running.add(lifetime);
        void lifetime.finally(() => running.delete(lifetime));
      });
    },
  );

  app.get(
    '/api/jobs/:id',
    {
      schema: {
        tags: ['pose'],
        summary: "A job's state and progress; `result` (the synchronous route's body) once it succeeded",
        security: bearerOptional,
        params: jobParamsSchema,
        response: { 200: jobSchema, ...errorResponses },
      },
    },
    async (request) => {
      checkBearer(request, config.apiToken);
      const id = jobId(request);
      return (await queue.get(id)) ?? notFound(id);
    },
  );

  app.delete(
    '/api/jobs/:id',
    {
      schema: {
        tags: ['pose'],
        summary: 'Cancel an unfinished job (its frames stop at once) and forget it',
        security: bearerOptional,
        params: jobParamsSchema,
        response: { 204: { type: 'null', description: 'cancelled or removed' }, ...errorResponses },
      },
    },
    async (request, reply) => {
      checkBearer(request, config.apiToken);
      const id = jobId(request);
      if (!(await queue.cancel(id))) notFound(id);
      return reply.code(204).send();
    },
  );

  app.get(
    '/api/jobs/:id/events',
    {
      schema: {
        tags: ['pose'],
        summary: 'Server-sent events: `progress` {id, state, progress} on every change, then `done` (same shape) and the stream ends',
        description:
          'text/event-stream. The first event is the current state. After `done`, fetch the result from GET /api/jobs/:id. ' +
          'A reconnect (Last-Event-ID) to a finished job gets 204, which stops EventSource retries.',
        security: bearerOptional,
        params: jobParamsSchema,
        response: {
          200: {
            description: 'the event stream (`id`, `event: progress | done`, `data`: {id, state, progress, error?, links})',
            content: { 'text/event-stream': { schema: { type: 'string' } } },
          },
          204: { description: 'a reconnect (Last-Event-ID) to a finished job: nothing more will come', type: 'null' },
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      checkBearer(request, config.apiToken);
      const id = jobId(request);
      const job = (await queue.get(id)) ?? notFound(id);
      if (FINISHED_STATES.has(job.state) && request.headers['last-event-id'] !== undefined) return reply.code(204).send();
      await streamEvents(queue, id, request, reply);
      return reply;
    },
  );

  // Shutdown: no new jobs; running ones get the grace period (memory: then fail; redis: handed back).
  app.addHook('preClose', async () => {
    await queue.close(config.shutdownGraceMs);
    await Promise.allSettled([...running]);
  });
}

function jobId(request: FastifyRequest): string {
  return (request.params as { id: string }).id;
}

function notFound(id: string): never {
  throw new ApiError('NOT_FOUND', `no job ${id} (unknown, expired after JOBS_TTL_S, or deleted)`);
}

async function streamEvents(queue: JobQueue, id: string, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
    'x-request-id': String(request.id),
  });
  let seq = 0;
  let ended = false;
  const send = (event: 'progress' | 'done', data: JobSummary) => {
    res.write(`id: ${++seq}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };
  const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
  heartbeat.unref();
  let stop: (() => void) | null = null;
  const end = () => {
    if (ended) return;
    ended = true;
    clearInterval(heartbeat);
    stop?.();
  };
  res.write('retry: 3000\n\n');
  res.once('close', end);
  try {
    stop = await queue.watch(id, (summary, finished) => {
      if (ended) return;
      if (!finished) {
        send('progress', summary);
        return;
      }
      // The first event is always the current state, then `done`.
      if (seq === 0) send('progress', summary);
      send('done', summary);
      end();
      res.end();
    });
  } catch (err) {
    // The queue could not be read (Redis away): the stream ends; EventSource reconnects after `retry`.
    request.log.warn({ err }, 'job events: the queue could not be read');
    end();
    res.end();
    return;
  }
  if (!stop) {
    // Gone between the lookup and the watch (deleted, expired): the stream ends.
    end();
    res.end();
  } else if (ended) stop();
}
