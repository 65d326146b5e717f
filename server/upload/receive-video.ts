/**
 * An uploaded video, received and checked: the multipart body streamed into the request's private
 * directory, its fields validated, the file probed (NOT_A_VIDEO / UNDECODABLE_VIDEO). Shared by the
 * synchronous route and the jobs API, so both accept and refuse exactly the same uploads.
 * A body is received under its own bound (`uploads`, MAX_ACTIVE_UPLOADS) and the body limits, before
 * the video asks for a processing slot: a slow upload never holds a place a posed video needs.
 */
import type { FastifyRequest } from 'fastify';
import type { Admission } from '../admission.js';
import type { Config } from '../config.js';
import type { MediaTools } from '../media/media-tools.js';
import { probeVideo, type VideoInfo } from '../media/probe.js';
import { parseFields, type PoseRequestFields } from './fields.js';
import { receiveUpload } from './receive-upload.js';

export interface ReceivedVideo {
  file: string;
  bytes: number;
  fields: PoseRequestFields;
  video: VideoInfo;
}

/** Optional observer of accepted uploads (metrics). */
export interface UploadObserver {
  observeUpload(bytes: number): void;
}

export async function receiveVideo(
  request: FastifyRequest,
  dir: string,
  deps: { config: Config; tools: MediaTools; uploads: Admission; observer?: UploadObserver },
): Promise<ReceivedVideo> {
  const { slot } = deps.uploads.tryEnter();
  const release = await slot;
  let upload;
  try {
    upload = await receiveUpload(request, dir, deps.config.maxUploadBytes, deps.config.upload);
  } finally {
    release();
  }
  deps.observer?.observeUpload(upload.bytes);
  const fields = parseFields(upload.fields, deps.config);
  request.log.info({ bytes: upload.bytes, name: upload.clientName, role: fields.role }, 'video received');
  const video = await probeVideo(deps.tools.ffprobe, upload.file, { maxPixels: deps.config.maxPixels });
  return { file: upload.file, bytes: upload.bytes, fields, video };
}
