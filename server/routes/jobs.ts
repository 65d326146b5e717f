/**
 * The jobs API, for videos too long to wait on one request:
 *   POST   /api/jobs              same multipart as the synchronous route, or JSON naming a finished
 *                                 resumable upload ({ uploadId, fps, … }) → 202 { id, state, links }
 *   GET    /api/jobs/:id          state, progress, and the result once succeeded
 *   GET    /api/jobs/:id/events   server-sent events: `progress` on every change, `done` at the end
 *                                  (with ?frames=true, `frames` too: final frames as they are posed)
 *   GET    /api/jobs/:id/frames   NDJSON: one final frame per line, in order, from ?from=N, as posed
 *   DELETE /api/jobs/:id          cancels an unfinished job and forgets it
 * The upload is received (or taken from the resumable uploads), its fields checked and the file
 * probed before the 202, so a bad upload gets the same 4xx as the synchronous route; a job takes
 * its admission place at once (BUSY when there is none) and waits for its slot in the background. A
 * callbackUrl gets a signed webhook when the job ends (server/jobs/webhooks.ts).
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { PosePool } from '../../workers/index.js';
import { Admission } from '../admission.js';
import { errorResponses, jobFormSchema, jobParamsSchema, jobSchema, uploadJobSchema } from '../api-schemas.js';
import type { Config } from '../config.js';
import { ApiError } from '../errors.js';
import { FINISHED_STATES, type JobSummary } from '../jobs/job.js';
import type { JobQueue, SubmittedJob } from '../jobs/job-queue.js';
import { checkCallbackUrl } from '../jobs/webhook-target.js';
import { sampleRate } from '../media/frame-source.js';
import type { MediaTools } from '../media/media-tools.js';
import type { PoseResponse } from '../pipeline/pose-response.js';
import { expectedFrames } from '../pipeline/pose-video.js';
import { type FramesObserver, unavailableError } from '../pipeline/pose-video-request.js';
import { receiveResumable } from '../upload/receive-resumable.js';
import { type ReceivedVideo, receiveVideo, type UploadObserver } from '../upload/receive-video.js';
import { withTempDir } from '../upload/temp-dir.js';
import type { ResumableStore, TakenUpload } from '../upload/tus-store.js';
import { bearerHook, checkBearer } from './auth.js';
import { multipartValidatorCompiler } from './docs.js';
import { NDJSON, NdjsonReply } from './ndjson.js';

export interface JobsRouteDeps {
  config: Config;
  pool: PosePool;
  tools: MediaTools;
  admission: Admission;
  /** Bodies being received (MAX_ACTIVE_UPLOADS). */
  uploads: Admission;
  queue: JobQueue;
  /** Finished tus uploads a JSON body may name. */
  resumable: ResumableStore;
  observer?: UploadObserver & FramesObserver;
}

/** A JSON job body names an upload and a few fields: anything larger is refused before it is read. */
const JOB_JSON_MAX_BYTES = 16 * 1024;

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
        description:
          "The video comes as the synchronous route's multipart body, or, as JSON, by the id of a finished resumable " +
          'upload (tus, /api/uploads) with the same fields. A JSON job takes the upload: a second job from it is 404 ' +
          'UPLOAD_NOT_FOUND. A refused job leaves the upload for a retry, unless its video itself was refused (413 ' +
          'FRAME_TOO_LARGE, 415, 422).',
        security: bearerOptional,
        body: {
          content: {
            'multipart/form-data': { schema: jobFormSchema(config) },
            'application/json': { schema: uploadJobSchema(config) },
          },
        },
        response: { 202: jobSchema, ...errorResponses },
      },
      // The bodies are documentation here: upload/fields.ts validates both, with the same rules.
      validatorCompiler: multipartValidatorCompiler(),
      bodyLimit: JOB_JSON_MAX_BYTES,
      onRequest: [bearerHook(config.apiToken), requireJobBody],
    },
    async (request: FastifyRequest, reply: FastifyReply) => {
      if (!pool.isAvailable()) throw unavailableError(pool);
      await queue.assertRoom();
      if (queue.admitsOnAcceptance) admission.assertRoom(); // BUSY before the body is read
      const id = randomUUID();
      const cancelUpload = new AbortController();
      const log = request.log.child({ jobId: id });

      const resumable = isJson(request);
      return await new Promise((resolve, reject) => {
        // A refused upload is answered once its temporary directory is gone, not before.
        let refused: { err: unknown } | null = null;
        const lifetime = withTempDir(async (dir) => {
          let submitted: SubmittedJob;
          let slot: Promise<() => void> | undefined;
          let taken: TakenUpload | undefined;
          try {
            // The body first (its own bound and rate floor), then (memory engine) a place among the videos.
            const admit = queue.admitsOnAcceptance
              ? () => {
                  slot = admission.tryEnter(cancelUpload.signal).slot;
                }
              : undefined;
            let received: ReceivedVideo;
            const callbackUrl = (raw: string) => checkCallbackUrl(raw, config.webhooks);
            if (resumable) {
              ({ received, taken } = await receiveResumable(request, {
                config,
                tools: deps.tools,
                store: deps.resumable,
                admit,
                callbackUrl,
              }));
            } else {
              received = await receiveVideo(request, dir, {
                config,
                tools: deps.tools,
                uploads: deps.uploads,
                observer: deps.observer,
                admit,
                callbackUrl,
              });
            }
            const f = received.fields;
            const expected = expectedFrames(received.video, sampleRate(f.fps, received.video), f.maxFrames);
            submitted = await queue.submit({ id, received, dir, expected, slot, cancelUpload, log });
          } catch (err) {
            cancelUpload.abort(err);
            if (slot) Admission.giveBack(slot);
            await taken?.refused(err);
            refused = { err };
            return;
          }
          reply.code(202).header('location', `/api/jobs/${id}`);
          resolve(submitted.view);
          try {
            await submitted.running;
          } finally {
            // A taken upload lives as long as the job's temporary directory (the Redis engine moved its file already).
            await taken?.remove();
          }
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
          'A reconnect (Last-Event-ID) to a finished job gets 204, which stops EventSource retries. ' +
          'With `frames=true`, `frames` events carry the final frames as they are posed (a JSON array, in order), `done` ' +
          'comes after the last of them, and each event id is the number of frames sent: a reconnect resumes after them.',
        security: bearerOptional,
        params: jobParamsSchema,
        querystring: eventsQuerySchema,
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
      const withFrames = (request.query as { frames?: boolean }).frames === true;
      const lastEventId = request.headers['last-event-id'];
      if (FINISHED_STATES.has(job.state) && lastEventId !== undefined && !withFrames) return reply.code(204).send();
      await streamEvents(queue, id, request, reply, withFrames ? Number(lastEventId ?? 0) || 0 : null);
      return reply;
    },
  );

  app.get(
    '/api/jobs/:id/frames',
    {
      schema: {
        tags: ['pose'],
        summary: "A job's frames as they are posed: NDJSON, one final frame per line in order, then `{done, job}`",
        description:
          'application/x-ndjson. Frames come from the first posed batch on, each once it and every frame before it are ' +
          'posed (smoothed where asked: the filter looks back only, so a streamed frame never changes). ' +
          '`from` resumes a dropped stream at a frame index. The last line is `{"done": true, "job": {id, state, progress, error?}}`.',
        security: bearerOptional,
        params: jobParamsSchema,
        querystring: framesQuerySchema,
        response: {
          200: { description: 'the frames, one JSON object per line', content: { [NDJSON]: { schema: { type: 'string' } } } },
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      checkBearer(request, config.apiToken);
      const id = jobId(request);
      const abort = new AbortController();
      const onClose = () => abort.abort(new Error('the client went away'));
      reply.raw.once('close', onClose);
      try {
        const chunks = (await queue.frames(id, fromOf(request), abort.signal)) ?? notFound(id);
        const out = new NdjsonReply(reply, abort.signal);
        for await (const chunk of chunks) {
          if ('frames' in chunk) await out.write(chunk.frames);
          else await out.end({ done: true, job: chunk.end });
        }
      } catch (err) {
        if (!reply.sent) throw err;
        request.log.info({ err: (err as Error).message }, 'job frames: the stream ended early');
      } finally {
        reply.raw.off('close', onClose);
      }
      return reply;
    },
  );

  // Shutdown: no new jobs; running ones get the grace period (memory: then fail; redis: handed back).
  app.addHook('preClose', async () => {
    await queue.close(config.shutdownGraceMs);
    await Promise.allSettled([...running]);
  });
}

/** Before the body: a job's body is multipart (the video) or JSON (a finished upload's id); anything else is MISSING_VIDEO. */
async function requireJobBody(request: FastifyRequest): Promise<void> {
  if (isJson(request) || /^multipart\/form-data\b/i.test(request.headers['content-type'] ?? '')) return;
  throw new ApiError(
    'MISSING_VIDEO',
    'the body must be multipart/form-data with a "video" file field, or JSON naming a finished upload: {"uploadId": "…"}',
  );
}

function isJson(request: FastifyRequest): boolean {
  return /^application\/json\b/i.test(request.headers['content-type'] ?? '');
}

function jobId(request: FastifyRequest): string {
  return (request.params as { id: string }).id;
}

const framesQuerySchema = {
  type: 'object',
  properties: { from: { type: 'integer', minimum: 0, default: 0, description: 'the first frame index to send' } },
  additionalProperties: false,
} as const;

function fromOf(request: FastifyRequest): number {
  return (request.query as { from?: number }).from ?? 0;
}

const eventsQuerySchema = {
  type: 'object',
  properties: { frames: { type: 'boolean', default: false, description: '`frames` events too: the final frames as they are posed' } },
  additionalProperties: false,
} as const;

/** The `frames` events of an events stream, then its `done` (the socket's pace is the reader's: a full buffer waits). */
async function sendFrames(
  queue: JobQueue,
  id: string,
  from: number,
  res: FastifyReply['raw'],
  request: FastifyRequest,
  send: (frames: PoseResponse['frames']) => boolean,
  done: (summary: JobSummary) => void,
): Promise<void> {
  const abort = new AbortController();
  res.once('close', () => abort.abort(new Error('the client went away')));
  try {
    const chunks = await queue.frames(id, from, abort.signal);
    if (!chunks) return;
    for await (const chunk of chunks) {
      if (!('frames' in chunk)) {
        done(chunk.end);
        return;
      }
      if (!send(chunk.frames)) await once(res, 'drain', { signal: abort.signal });
    }
  } catch (err) {
    if (!abort.signal.aborted) request.log.warn({ err }, 'job events: the frames could not be read');
  }
}

function notFound(id: string): never {
  throw new ApiError('NOT_FOUND', `no job ${id} (unknown, expired after JOBS_TTL_S, or deleted)`);
}

/**
 * The events stream. `framesFrom` (null: no frames): `frames` events from that index, `done` after the
 * last of them, and every event's id is the number of frames sent (what a reconnect resumes from).
 */
async function streamEvents(
  queue: JobQueue,
  id: string,
  request: FastifyRequest,
  reply: FastifyReply,
  framesFrom: number | null,
): Promise<void> {
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
  let framesSent = framesFrom ?? 0;
  let ended = false;
  const send = (event: 'progress' | 'done' | 'frames', data: unknown) => {
    seq += 1;
    return res.write(`id: ${framesFrom === null ? seq : framesSent}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
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
  if (framesFrom !== null)
    void sendFrames(
      queue,
      id,
      framesFrom,
      res,
      request,
      (frames) => {
        framesSent += frames.length;
        return send('frames', frames);
      },
      (summary) => {
        if (ended) return;
        send('done', summary);
        end();
        res.end();
      },
    );
  try {
    stop = await queue.watch(id, (summary, finished) => {
      if (ended) return;
      if (!finished || framesFrom !== null) {
        // With frames, `done` comes after the last frames event (sendFrames).
        if (!finished) send('progress', summary);
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
