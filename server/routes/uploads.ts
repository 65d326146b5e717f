/**
 * Resumable uploads, the tus protocol 1.0.0 (@tus/server on @tus/file-store, upload/tus-store.ts):
 *   POST    /api/uploads       creates one (Upload-Length, or Upload-Defer-Length: 1) → 201, Location /api/uploads/<id>
 *   HEAD    /api/uploads/<id>  its Upload-Offset: the bytes the server has; a client resumes from there
 *   PATCH   /api/uploads/<id>  bytes from Upload-Offset (Content-Type: application/offset+octet-stream)
 *   DELETE  /api/uploads/<id>  drops it
 *   OPTIONS /api/uploads       tus versions, extensions and Tus-Max-Size
 * A finished upload becomes a job with POST /api/jobs {"uploadId": "<id>", …} (routes/jobs.ts).
 *
 * Our checks come first, answered in the catalogue's JSON: the token (401), shutdown (503), and for a
 * request that carries bytes a place among the bodies being received (MAX_ACTIVE_UPLOADS, 503 BUSY).
 * Then tus has the raw request, and its protocol errors keep tus's text bodies (412 no Tus-Resumable,
 * 400 a bad header, 404/410 no such or expired upload, 409 wrong Upload-Offset, 413 over MAX_UPLOAD_MB).
 * MAX_UPLOAD_MB is tus's maxSize: Upload-Length over it is refused at creation, and a body is cut off
 * at the declared length (or the limit, when the length is deferred) while it streams.
 */
import type { Socket } from 'node:net';
import { EVENTS, Server } from '@tus/server';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Admission } from '../admission.js';
import { errorResponses } from '../api-schemas.js';
import type { Config } from '../config.js';
import { ApiError } from '../errors.js';
import { watchBody } from '../upload/body-watch.js';
import { UPLOAD_ID_PATTERN } from '../upload/fields.js';
import type { UploadObserver } from '../upload/receive-video.js';
import type { ResumableObserver, ResumableStore } from '../upload/tus-store.js';
import { bearerHook } from './auth.js';

export const UPLOADS_PATH = '/api/uploads';

export interface UploadsRouteDeps {
  config: Config;
  store: ResumableStore;
  /** Bodies being received (MAX_ACTIVE_UPLOADS), shared with the multipart routes. */
  uploads: Admission;
  observer?: UploadObserver & ResumableObserver;
}

const bearerOptional: { [label: string]: string[] }[] = [{ bearer: [] }, {}];
const tusNote =
  'The tus protocol 1.0.0 (https://tus.io/protocols/resumable-upload): every request but OPTIONS carries `Tus-Resumable: 1.0.0`. ' +
  "tus's own protocol errors answer with tus's text bodies; our checks before it (token, shutdown, BUSY) with the error catalogue's JSON.";

export async function registerUploadsRoutes(app: FastifyInstance, deps: UploadsRouteDeps): Promise<void> {
  const { config, store, uploads, observer } = deps;
  let tus: Promise<Server> | null = null;
  const server = (): Promise<Server> => {
    tus ??= store.datastore().then((datastore) => {
      const s = new Server({
        path: UPLOADS_PATH,
        datastore,
        maxSize: config.maxUploadBytes,
        // Location is /api/uploads/<id>: right behind any proxy that keeps the path, whatever its host and scheme.
        relativeLocation: true,
        // Same origin only, like the rest of the API (tus's default would answer any origin).
        allowedOrigins: () => false,
        onResponseError: (req, err) => {
          const status = 'status_code' in err ? err.status_code : 500;
          const level = status >= 500 ? 'warn' : 'info';
          app.log[level](
            { method: req.method, url: new URL(req.url).pathname, status, tus: errorText(err) },
            'resumable upload: tus refused a request',
          );
          return undefined;
        },
      });
      s.on(EVENTS.POST_CREATE, (_req, upload) => {
        observer?.observeResumable('created');
        app.log.info({ uploadId: upload.id, length: upload.size ?? null }, 'resumable upload created');
      });
      s.on(EVENTS.POST_FINISH, (_req, _res, upload) => {
        observer?.observeResumable('finished');
        observer?.observeUpload(upload.size ?? upload.offset);
        app.log.info({ uploadId: upload.id, bytes: upload.size ?? upload.offset }, 'resumable upload finished');
      });
      return s;
    });
    tus.catch(() => (tus = null)); // the folder could not be made: this request fails, the next tries again
    return tus;
  };

  // Sockets whose request is sending bytes: cut at shutdown (what arrived is kept; the client resumes, here or elsewhere).
  const receiving = new Set<Socket>();
  app.addHook('preClose', async () => {
    for (const socket of receiving) socket.destroy();
  });

  const handler = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const raw = request.raw;
    const carriesBody = raw.headers['transfer-encoding'] !== undefined || Number(raw.headers['content-length'] ?? 0) > 0;
    // BUSY (503, Retry-After) here, before a byte is read: tus clients retry it.
    const release = carriesBody ? await uploads.tryEnter().slot : undefined;
    const socket = raw.socket;
    // A body that stalls or trickles under the rate floor is cut: what it brought stays, the client resumes.
    const watch = carriesBody && socket ? watchBody(socket, config.upload) : null;
    watch?.broken.catch((err: ApiError) => {
      request.log.info({ reason: err.message }, 'resumable upload: the body stalled, connection closed');
      socket?.destroy();
    });
    if (carriesBody && socket) receiving.add(socket);
    reply.hijack();
    reply.raw.setHeader('x-request-id', String(request.id));
    const closed = new Promise((resolve) => reply.raw.once('close', resolve));
    const handled = server()
      .then((s) => s.handle(raw, reply.raw))
      .catch((err: unknown) => {
        request.log.error({ err }, 'resumable upload: unhandled error');
        if (reply.raw.headersSent) {
          reply.raw.destroy();
          return;
        }
        const api = new ApiError('INTERNAL_ERROR', 'internal error (see the server log with this requestId)');
        reply.raw.writeHead(api.status, { 'content-type': 'application/json; charset=utf-8', connection: 'close' });
        reply.raw.end(JSON.stringify(api.body(String(request.id))));
      });
    try {
      // A client gone mid-answer may leave tus's last write waiting for ever: its response closing ends the request too.
      await Promise.race([handled, closed]);
    } finally {
      watch?.stop();
      release?.();
      if (socket) receiving.delete(socket);
    }
  };

  await app.register(async (scope) => {
    // tus reads each body from the raw request itself: no parser in this scope may touch it.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_request, _payload, done) => done(null));
    const onRequest = bearerHook(config.apiToken);
    scope.route({
      method: ['POST', 'OPTIONS'],
      url: UPLOADS_PATH,
      onRequest,
      handler,
      schema: {
        tags: ['uploads'],
        summary: 'Create a resumable upload (POST: Upload-Length, or Upload-Defer-Length: 1); OPTIONS: tus discovery',
        description:
          `${tusNote} POST answers 201 with \`Location: /api/uploads/<id>\`; an Upload-Length over MAX_UPLOAD_MB is 413. ` +
          '`Upload-Metadata` (e.g. filename, filetype) is kept with the upload and otherwise ignored.',
        security: bearerOptional,
        response: { 201: { description: 'created: Location names the upload', type: 'null' }, ...errorResponses },
      },
    });
    scope.route({
      method: ['HEAD', 'PATCH', 'DELETE'],
      url: `${UPLOADS_PATH}/:id`,
      onRequest,
      handler,
      schema: {
        tags: ['uploads'],
        summary: "HEAD: the upload's offset (resume from it); PATCH: bytes from Upload-Offset; DELETE: drop it",
        description:
          `${tusNote} PATCH takes \`Content-Type: application/offset+octet-stream\` and \`Upload-Offset\` equal to the ` +
          "server's offset (else 409), and answers 204 with the new Upload-Offset. Once the offset reaches Upload-Length, " +
          'start a job with POST /api/jobs {"uploadId": "<id>"}. An upload, finished or not, expires UPLOAD_EXPIRY_S after its creation unless a job took it (then 404/410).',
        security: bearerOptional,
        params: { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: UPLOAD_ID_PATTERN } } },
        response: { 204: { description: 'PATCH: bytes kept (Upload-Offset); DELETE: dropped', type: 'null' }, ...errorResponses },
      },
    });
  });
}

function errorText(err: Error | { status_code: number; body: string }): string {
  return ('body' in err ? err.body : err.message).trim().slice(0, 200);
}
