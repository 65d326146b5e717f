/**
 * An uploaded video, received and checked: the multipart body streamed into the request's private
 * directory, its fields validated, the file probed (NOT_A_VIDEO / UNDECODABLE_VIDEO). Shared by the
 * synchronous route and the jobs API, so both accept and refuse exactly the same uploads.
 * A body is received under its own bound (`uploads`, MAX_ACTIVE_UPLOADS) and the body limits, before
 * the video asks for a processing slot (`admit`, right after the body: a burst is refused BUSY
 * without probing it): a slow upload never holds a place a posed video needs.
 */
import type { FastifyRequest } from 'fastify';
import type { Admission } from '../admission.js';
import type { Config } from '../config.js';
import { ApiError } from '../errors.js';
import { plannedDecodes, sampleRate } from '../media/frame-source.js';
import type { MediaTools } from '../media/media-tools.js';
import { probeVideo, type VideoInfo } from '../media/probe.js';
import { inSpan } from '../spans.js';
import { type PoseRequestFields, parseFields } from './fields.js';
import { type ReceivedUpload, receiveUpload } from './receive-upload.js';

export interface ReceivedVideo {
  file: string;
  bytes: number;
  fields: PoseRequestFields;
  video: VideoInfo;
  /** The jobs route's callbackUrl, checked (absent: none was sent). */
  callbackUrl?: string;
}

/** Optional observer of accepted uploads (metrics). */
export interface UploadObserver {
  observeUpload(bytes: number): void;
}

export async function receiveVideo(
  request: FastifyRequest,
  dir: string,
  deps: {
    config: Config;
    tools: MediaTools;
    uploads: Admission;
    observer?: UploadObserver;
    /** Called once the body and its fields are in, before the probe: where the caller takes its place among the videos (BUSY is thrown there). */
    admit?: () => void;
    /** The jobs route: checks a callbackUrl field (throws a 4xx) and gives the URL kept. Without it the field is refused. */
    callbackUrl?: (raw: string) => string;
  },
): Promise<ReceivedVideo> {
  const { slot } = deps.uploads.tryEnter();
  const release = await slot;
  let upload: ReceivedUpload;
  try {
    upload = await inSpan('upload', {}, async (span) => {
      const received = await receiveUpload(request, dir, deps.config.maxUploadBytes, deps.config.upload);
      span.setAttribute('posepool.upload.bytes', received.bytes);
      return received;
    });
  } finally {
    release();
  }
  deps.observer?.observeUpload(upload.bytes);
  const fields = parseFields(upload.fields, deps.config, { jobFields: Boolean(deps.callbackUrl) });
  // Before a place is taken or the file probed: a refused callbackUrl costs nothing more.
  const raw = upload.fields.callbackUrl;
  const callbackUrl = raw !== undefined && deps.callbackUrl ? deps.callbackUrl(raw) : undefined;
  request.log.info({ bytes: upload.bytes, name: upload.clientName, role: fields.role, webhook: Boolean(callbackUrl) }, 'video received');
  deps.admit?.();
  return checkVideo({ file: upload.file, bytes: upload.bytes, fields, ...(callbackUrl ? { callbackUrl } : {}) }, deps);
}

/**
 * The checks once a video's bytes are on disk, whichever way they came (a multipart body, a finished
 * tus upload): the probe (NOT_A_VIDEO, UNDECODABLE_VIDEO, FRAME_TOO_LARGE) and the decode cost.
 */
export async function checkVideo(
  upload: { file: string; bytes: number; fields: PoseRequestFields; callbackUrl?: string },
  deps: { config: Config; tools: MediaTools },
): Promise<ReceivedVideo> {
  const video = await inSpan('probe', {}, async (span) => {
    const info = await probeVideo(deps.tools.ffprobe, upload.file, { maxPixels: deps.config.maxPixels });
    span.setAttributes({
      'posepool.video.width': info.width,
      'posepool.video.height': info.height,
      'posepool.video.duration_ms': info.durationMs,
      'posepool.video.fps': info.fps,
      'posepool.video.codec': info.codec,
    });
    return info;
  });
  checkDecodeCost(video, upload.fields, deps.config.maxDecodedFrames);
  return { ...upload, video };
}

/** BAD_FIELD (fps) when sampling this video as asked would decode more than MAX_DECODED_FRAMES frames. */
export function checkDecodeCost(video: VideoInfo, fields: PoseRequestFields, maxDecodedFrames: number): void {
  const fps = sampleRate(fields.fps, video);
  const decodes = plannedDecodes({ fps, maxFrames: fields.maxFrames, durationMs: video.durationMs, sourceFps: video.maxFps });
  if (decodes > maxDecodedFrames) {
    throw new ApiError(
      'BAD_FIELD',
      `sampling ${fields.maxFrames} frames at ${fps} fps would decode ${decodes} frames of this video, over MAX_DECODED_FRAMES (${maxDecodedFrames}): ask for fewer frames or a higher fps`,
      { details: { field: 'fps' } },
    );
  }
}
