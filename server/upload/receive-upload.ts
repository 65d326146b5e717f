/**
 * Reads the multipart body: the one `video` file is streamed to disk in the request's private
 * directory under a fixed name (the client's file name is never used as a path), and the text
 * fields are collected. @fastify/multipart enforces MAX_UPLOAD_MB on the stream, so an oversized
 * upload is cut off while it arrives, never buffered whole; body-watch.ts bounds how slowly it may
 * arrive (408 UPLOAD_TIMEOUT).
 */
import { createWriteStream } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { FastifyRequest } from 'fastify';
import { ApiError } from '../errors.js';
import { type BodyLimits, watchBody } from './body-watch.js';

export interface ReceivedUpload {
  file: string;
  bytes: number;
  /** The client's file name, for logs only (sanitised). */
  clientName: string;
  fields: Record<string, string>;
}

export async function receiveUpload(request: FastifyRequest, dir: string, maxBytes: number, limits?: BodyLimits): Promise<ReceivedUpload> {
  if (!request.isMultipart()) {
    throw new ApiError('MISSING_VIDEO', 'the body must be multipart/form-data with a "video" file field');
  }
  const watch = limits && request.raw.socket ? watchBody(request.raw.socket, limits) : null;
  const stop = new AbortController();
  const reading = readParts(request, dir, maxBytes, stop.signal);
  try {
    const received = await (watch ? Promise.race([reading, watch.broken]) : reading);
    if (!received) throw new ApiError('MISSING_VIDEO');
    return received;
  } catch (err) {
    if (err instanceof ApiError && err.code === 'UPLOAD_TIMEOUT') {
      // The file being written is closed now (the body's parser would never end it: the client is
      // still connected), the answer goes out with `connection: close` (app.ts), and the socket with it.
      reading.catch(() => undefined);
      stop.abort(err);
      request.raw.unpipe();
      throw err;
    }
    // The answer goes out now; what is left of the body is read and dropped as it comes. Left paused,
    // the request would hold its socket (and a graceful close) until the client gave up.
    if (!request.raw.complete) request.raw.resume();
    throw mapMultipartError(err, maxBytes);
  } finally {
    watch?.stop();
  }
}

async function readParts(request: FastifyRequest, dir: string, maxBytes: number, signal: AbortSignal): Promise<ReceivedUpload | null> {
  const fields: Record<string, string> = {};
  let received: ReceivedUpload | null = null;
  for await (const part of request.parts()) {
    if (signal.aborted) throw signal.reason;
    if (part.type === 'file') {
      if (part.fieldname !== 'video') {
        part.file.resume();
        throw new ApiError('BAD_FIELD', `unexpected file field "${safe(part.fieldname)}"; the video goes in "video"`, {
          details: { field: safe(part.fieldname) },
        });
      }
      if (received) {
        part.file.resume();
        throw new ApiError('BAD_FIELD', 'send exactly one "video" file', { details: { field: 'video' } });
      }
      const file = path.join(dir, 'upload');
      let bytes = 0;
      part.file.on('data', (chunk: Buffer) => (bytes += chunk.length));
      // At the limit, stop at once (busboy would otherwise read and drop the rest of the body first).
      part.file.once('limit', () => part.file.destroy(tooLarge(maxBytes)));
      await pipeline(part.file, createWriteStream(file, { mode: 0o600 }), { signal });
      if (part.file.truncated) throw tooLarge(maxBytes);
      received = { file, bytes, clientName: safe(part.filename ?? ''), fields };
    } else {
      if (part.fieldnameTruncated) throw new ApiError('BAD_FIELD', 'a form field name is too long');
      if (part.valueTruncated) {
        throw new ApiError('BAD_FIELD', `field "${safe(part.fieldname)}" is too long (at most ${FIELD_VALUE_MAX_BYTES} bytes)`, {
          details: { field: safe(part.fieldname) },
        });
      }
      if (Object.hasOwn(fields, part.fieldname)) {
        throw new ApiError('BAD_FIELD', `field "${safe(part.fieldname)}" was sent twice`, { details: { field: safe(part.fieldname) } });
      }
      fields[part.fieldname] = String(part.value ?? '');
    }
  }
  return received;
}

/**
 * Route hook (onRequest), before a byte of the body is read: a body that is not multipart is
 * MISSING_VIDEO, whatever its size. What the client still sends is read and dropped under the bound
 * app.ts puts on every refused body.
 */
export async function requireMultipart(request: FastifyRequest): Promise<void> {
  // The header, not request.isMultipart(): that one is only known once the body parser has run.
  if (/^multipart\/form-data\b/i.test(request.headers['content-type'] ?? '')) return;
  throw new ApiError('MISSING_VIDEO', 'the body must be multipart/form-data with a "video" file field');
}

/** The longest text field value accepted (@fastify/multipart's fieldSize in app.ts); longer is BAD_FIELD, not cut. */
export const FIELD_VALUE_MAX_BYTES = 1024;

function tooLarge(maxBytes: number): ApiError {
  return new ApiError('UPLOAD_TOO_LARGE', `the upload exceeds ${Math.round(maxBytes / 1024 / 1024)} MB (MAX_UPLOAD_MB)`, {
    details: { limitBytes: maxBytes },
  });
}

/** @fastify/multipart and busboy errors → the catalogue. */
export function mapMultipartError(err: unknown, maxBytes: number): unknown {
  if (err instanceof ApiError) return err;
  const code = (err as { code?: string })?.code;
  switch (code) {
    case 'FST_REQ_FILE_TOO_LARGE':
      return tooLarge(maxBytes);
    case 'FST_FILES_LIMIT':
      return new ApiError('BAD_FIELD', 'send exactly one "video" file', { details: { field: 'video' } });
    case 'FST_FIELDS_LIMIT':
    case 'FST_PARTS_LIMIT':
      return new ApiError('BAD_FIELD', 'too many form fields');
    case 'FST_PROTO_VIOLATION':
      return new ApiError('BAD_FIELD', 'a form field name is not allowed');
    case 'FST_INVALID_MULTIPART_CONTENT_TYPE':
      return new ApiError('MISSING_VIDEO', 'the body must be multipart/form-data with a "video" file field');
    case 'ECONNRESET':
    case 'FST_MP_PREMATURE_CLOSE':
      return new ApiError('BAD_REQUEST', 'the client went away before the upload ended');
    default: {
      const message = (err as Error)?.message ?? '';
      if (message === 'aborted') return new ApiError('BAD_REQUEST', 'the client went away before the upload ended');
      if (/Unexpected end of (form|multipart data)|terminated early|Multipart: Boundary not found|Malformed part header/i.test(message)) {
        return new ApiError('BAD_REQUEST', 'the multipart body is malformed or was cut off');
      }
      return err;
    }
  }
}

/** For logs and messages: printable, short, no path separators. */
export function safe(s: string): string {
  return s.replace(/[^\w.\- ]/g, '_').slice(0, 80);
}
