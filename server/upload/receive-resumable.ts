/**
 * A job's video from a finished resumable upload (POST /api/jobs with a JSON body): the fields are
 * parsed as the multipart route's (the same 400s), the video takes its place among the videos
 * (BUSY before the upload is touched), then the upload is taken from the store and checked exactly
 * as a multipart upload is (the same 413, 415, 422). A refusal puts the upload back, unless its
 * video itself was refused (tus-store.ts).
 */
import type { FastifyRequest } from 'fastify';
import type { Config } from '../config.js';
import type { MediaTools } from '../media/media-tools.js';
import { parseFields, parseUploadJobBody } from './fields.js';
import { checkVideo, type ReceivedVideo } from './receive-video.js';
import type { ResumableStore, TakenUpload } from './tus-store.js';

export async function receiveResumable(
  request: FastifyRequest,
  deps: {
    config: Config;
    tools: MediaTools;
    store: ResumableStore;
    /** Where the caller takes its place among the videos (BUSY is thrown there), before the upload is taken. */
    admit?: () => void;
    /** Checks a callbackUrl member (throws a 4xx) and gives the URL kept. */
    callbackUrl?: (raw: string) => string;
  },
): Promise<{ received: ReceivedVideo; taken: TakenUpload }> {
  const { uploadId, fields: raw } = parseUploadJobBody(request.body);
  const fields = parseFields(raw, deps.config, { jobFields: Boolean(deps.callbackUrl) });
  // Before a place is taken or the upload touched: a refused callbackUrl costs nothing more.
  const callbackUrl = raw.callbackUrl !== undefined && deps.callbackUrl ? deps.callbackUrl(raw.callbackUrl) : undefined;
  deps.admit?.();
  const taken = await deps.store.take(uploadId);
  try {
    request.log.info({ bytes: taken.bytes, uploadId, name: taken.clientName, role: fields.role }, 'video received (resumable upload)');
    const received = await checkVideo({ file: taken.file, bytes: taken.bytes, fields, ...(callbackUrl ? { callbackUrl } : {}) }, deps);
    return { received, taken };
  } catch (err) {
    await taken.refused(err);
    throw err;
  }
}
