/**
 * POST /api/upload-video-with-pose: upload → frames → batches → workers → results → response.
 * The order of checks makes failures cheap: token, a ready worker (503 at once, before the body
 * is read), admission (BUSY), then the body, the fields, the probe, and the pipeline.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config.js';
import { ApiError } from '../errors.js';
import type { MediaTools } from '../media/media-tools.js';
import { probeVideo } from '../media/probe.js';
import { poseVideo } from '../pipeline/pose-video.js';
import { buildPoseResponse } from '../pipeline/pose-response.js';
import type { Admission } from '../admission.js';
import { publicCause, type ServerPool } from '../server-pool.js';
import { parseFields } from '../upload/fields.js';
import { receiveUpload } from '../upload/receive-upload.js';
import { withTempDir } from '../upload/temp-dir.js';
import { checkBearer } from './auth.js';

export interface UploadRouteDeps {
  config: Config;
  pool: ServerPool;
  tools: MediaTools;
  admission: Admission;
}

export function unavailableError(pool: ServerPool): ApiError {
  const causes = pool.lastErrors().map(publicCause);
  const first = causes[0];
  const message = first
    ? `no pose worker is ready: ${first.type}: ${first.message}. Fix: ${first.hint}`
    : 'no pose worker is ready yet (workers are starting)';
  return new ApiError('POSE_SERVICE_UNAVAILABLE', message, {
    details: { lastError: first ?? null, lastErrors: causes },
    retryAfterS: 5,
  });
}

export function registerUploadRoute(app: FastifyInstance, deps: UploadRouteDeps): void {
  const { config, pool, admission } = deps;

  app.post('/api/upload-video-with-pose', async (request: FastifyRequest, reply: FastifyReply) => {
    checkBearer(request, config.apiToken);
    if (!pool.isAvailable()) throw unavailableError(pool);

    const started = performance.now();
    const abort = new AbortController();
    const onClose = () => {
      if (!reply.raw.writableFinished) abort.abort(new ApiError('BAD_REQUEST', 'the client went away'));
    };
    reply.raw.once('close', onClose);
    const timer = setTimeout(
      () => abort.abort(new ApiError('TIMEOUT', `the video took longer than ${config.requestTimeoutMs} ms (REQUEST_TIMEOUT_MS)`)),
      config.requestTimeoutMs,
    );

    const release = await admission.enter(abort.signal);
    try {
      return await withTempDir(async (dir) => {
        const upload = await receiveUpload(request, dir, config.maxUploadBytes);
        const fields = parseFields(upload.fields, config);
        request.log.info({ bytes: upload.bytes, name: upload.clientName, role: fields.role }, 'video received');
        const video = await probeVideo(deps.tools.ffprobe, upload.file);
        const model = pool.model();
        if (!model) throw unavailableError(pool);
        const result = await poseVideo(
          {
            requestId: String(request.id),
            file: upload.file,
            video,
            fps: fields.fps,
            maxFrames: fields.maxFrames,
            tracking: fields.tracking,
            smoothing: fields.smoothing,
            signal: abort.signal,
            log: request.log,
          },
          { pool, ffmpeg: deps.tools.ffmpeg, batchSize: config.batchSize, transport: config.transport, tempDir: dir },
        );
        if (result.frames.length > 0 && result.frames.every((f) => f.error?.code === 'POSE_SERVICE_UNAVAILABLE')) {
          throw unavailableError(pool);
        }
        return buildPoseResponse({
          id: String(request.id),
          role: fields.role,
          video,
          model,
          result,
          elapsedMs: performance.now() - started,
        });
      });
    } finally {
      release();
      clearTimeout(timer);
      reply.raw.off('close', onClose);
    }
  });
}
