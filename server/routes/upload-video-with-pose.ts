/**
 * POST /api/upload-video-with-pose: upload → frames → batches → workers → results → response.
 * The order of checks makes failures cheap: token, a ready worker (503 at once, before the body
 * is read), room among the videos (BUSY), then the body (its own bound and rate floor), the fields,
 * the probe, a place among the videos, and the pipeline.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { PosePool } from '../../workers/index.js';
import { Admission } from '../admission.js';
import { uploadRouteSchema } from '../api-schemas.js';
import type { Config } from '../config.js';
import { ApiError, isApiError } from '../errors.js';
import type { MediaTools } from '../media/media-tools.js';
import { publicFrame } from '../pipeline/pose-response.js';
import { type FramesObserver, poseVideoRequest, unavailableError } from '../pipeline/pose-video-request.js';
import { requireMultipart } from '../upload/receive-upload.js';
import { receiveVideo, type UploadObserver } from '../upload/receive-video.js';
import { withTempDir } from '../upload/temp-dir.js';
import { bearerHook } from './auth.js';
import { multipartValidatorCompiler } from './docs.js';
import { NdjsonReply, wantsNdjson } from './ndjson.js';

export { unavailableError };

export interface UploadRouteDeps {
  config: Config;
  pool: PosePool;
  tools: MediaTools;
  /** Videos being posed (and waiting to be). */
  admission: Admission;
  /** Bodies being received (MAX_ACTIVE_UPLOADS). */
  uploads: Admission;
  /** Metrics (upload sizes, frames); optional. */
  observer?: UploadObserver & FramesObserver;
}

export function registerUploadRoute(app: FastifyInstance, deps: UploadRouteDeps): void {
  const { config, pool, admission, uploads } = deps;

  const routeOptions = {
    schema: uploadRouteSchema(config),
    validatorCompiler: multipartValidatorCompiler(),
    // Before the body: the token (401), then its type (a JSON or text body is MISSING_VIDEO, not parsed).
    onRequest: [bearerHook(config.apiToken), requireMultipart],
  };
  app.post('/api/upload-video-with-pose', routeOptions, async (request: FastifyRequest, reply: FastifyReply) => {
    if (!pool.isAvailable()) throw unavailableError(pool);
    admission.assertRoom(); // BUSY before the body is read, when no place could be had after it either

    const started = performance.now();
    const abort = new AbortController();
    const stream = wantsNdjson(request) ? new NdjsonReply(reply, abort.signal) : null;
    const onClose = () => {
      if (!reply.raw.writableFinished) abort.abort(new ApiError('BAD_REQUEST', 'the client went away'));
    };
    reply.raw.once('close', onClose);
    let timer: NodeJS.Timeout | undefined;
    let slot: Promise<() => void> | undefined;
    let release: (() => void) | undefined;
    try {
      return await withTempDir(async (dir) => {
        // The body first; its place among the videos as soon as the body is in (BUSY then, before the probe).
        const admit = () => {
          slot = admission.tryEnter(abort.signal).slot;
        };
        const received = await receiveVideo(request, dir, { config, tools: deps.tools, uploads, observer: deps.observer, admit });
        // Processing, from the upload's last byte: the wait for a place, then the pipeline, within REQUEST_TIMEOUT_MS.
        timer = setTimeout(
          () => abort.abort(new ApiError('TIMEOUT', `the video took longer than ${config.requestTimeoutMs} ms (REQUEST_TIMEOUT_MS)`)),
          config.requestTimeoutMs,
        );
        if (!slot) throw new Error('receiveVideo returned without admitting the video (no place among the videos was taken)');
        release = await slot;
        if (!stream) {
          return await poseVideoRequest(
            { id: String(request.id), ...received, signal: abort.signal, log: request.log, started },
            { pool, config, ffmpeg: deps.tools.ffmpeg, tempDir: dir, observer: deps.observer },
          );
        }
        // Accept: application/x-ndjson: each frame as it is final, then the body without its frames.
        const response = await poseVideoRequest(
          {
            id: String(request.id),
            ...received,
            signal: abort.signal,
            log: request.log,
            started,
            onFrames: (frames) => {
              const shown = frames.map(publicFrame);
              deps.observer?.observeFrames(shown);
              return stream.write(shown);
            },
            keepFrames: false,
          },
          { pool, config, ffmpeg: deps.tools.ffmpeg, tempDir: dir, observer: deps.observer },
        );
        const { frames: _none, ...rest } = response;
        await stream.end({ done: true, ...rest });
        return reply;
      }, config.tempDir);
    } catch (err) {
      // Once the 200 is out, an error is the stream's last line.
      if (!stream?.started) throw err;
      const apiError = isApiError(err) ? err : new ApiError('INTERNAL_ERROR');
      if (!isApiError(err)) request.log.error({ err }, 'the streamed response failed');
      await stream.end(apiError.body(String(request.id))).catch(() => {});
      return reply;
    } finally {
      if (release) release();
      else if (slot) {
        // Refused after it took its place (an undecodable video, a timeout in the queue): out of the queue, or the place given back.
        abort.abort(new ApiError('BAD_REQUEST', 'the video was refused'));
        Admission.giveBack(slot);
      }
      clearTimeout(timer);
      reply.raw.off('close', onClose);
    }
  });
}
