/** Optional bearer token (API_TOKEN) for the upload route; health probes stay open. */
import { timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { ApiError } from '../errors.js';

export function checkBearer(request: FastifyRequest, token: string | null): void {
  if (!token) return;
  const header = request.headers.authorization ?? '';
  const match = /^Bearer\s+(.+)$/i.exec(header);
  const given = Buffer.from(match?.[1] ?? '');
  const expected = Buffer.from(token);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new ApiError('UNAUTHORIZED', 'missing or wrong bearer token (Authorization: Bearer <API_TOKEN>)');
  }
}
