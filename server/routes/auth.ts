/** Optional bearer token (API_TOKEN) for the upload and jobs routes; health probes stay open. */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { ApiError } from '../errors.js';

/** SHA-256 of each side, compared in constant time: neither the time nor an early length check tells the token's length. */
const digest = (s: string) => createHash('sha256').update(s).digest();

export function checkBearer(request: FastifyRequest, token: string | null): void {
  if (!token) return;
  const header = request.headers.authorization ?? '';
  const match = /^Bearer\s+(.+)$/i.exec(header);
  if (!match || !timingSafeEqual(digest(match[1]), digest(token))) {
    throw new ApiError('UNAUTHORIZED', 'missing or wrong bearer token (Authorization: Bearer <API_TOKEN>)');
  }
}

/** The onRequest hook of a route API_TOKEN protects: the token is checked before the body is read. */
export function bearerHook(token: string | null): (request: FastifyRequest) => Promise<void> {
  return async (request) => checkBearer(request, token);
}
