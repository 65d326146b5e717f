/** The page at / (server/public: index.html and app.js, no build step): upload, progress, playback with the skeleton. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { REPO_ROOT } from '../config.js';

export const PUBLIC_DIR = path.join(REPO_ROOT, 'server', 'public');

const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "media-src 'self' blob:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

export function registerPageRoutes(app: FastifyInstance, dir = PUBLIC_DIR): void {
  const files = [
    { url: '/', file: 'index.html', type: 'text/html; charset=utf-8' },
    { url: '/app.js', file: 'app.js', type: 'text/javascript; charset=utf-8' },
  ];
  for (const { url, file, type } of files) {
    const body = readFileSync(path.join(dir, file));
    app.get(url, { schema: { hide: true } }, async (_request, reply) => {
      reply.type(type).header('content-security-policy', CSP).header('cache-control', 'no-cache');
      return body;
    });
  }
}
