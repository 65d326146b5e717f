/**
 * An uploaded video, received and checked: the multipart body streamed into the request's private
 * directory, its fields validated, the file probed (NOT_A_VIDEO / UNDECODABLE_VIDEO). Shared by the
 * synchronous route and the jobs API, so both accept and refuse exactly the same uploads.
 */
import type { FastifyRequest } from 'fastify';
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
  deps: { config: Config; tools: MediaTools; observer?: UploadObserver },
): Promise<ReceivedVideo> {
  const upload = await receiveUpload(request, dir, deps.config.maxUploadBytes);
  deps.observer?.observeUpload(upload.bytes);
  const fields = parseFields(upload.fields, deps.config);
  request.log.info({ bytes: upload.bytes, name: upload.clientName, role: fields.role }, 'video received');
  const video = await probeVideo(deps.tools.ffprobe, upload.file);
  return { file: upload.file, bytes: upload.bytes, fields, video };
}
