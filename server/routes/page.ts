/**
 * The page at / (server/public: index.html and app.js, no build step): upload, progress, playback with
 * the skeleton. Its one library, tus-js-client's browser build, is served from node_modules at
 * /vendor/tus.min.js: no CDN, the page works on a closed network.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
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

/** tus-js-client's browser build (UMD: the global `tus`). */
export const TUS_BROWSER_BUILD = createRequire(import.meta.url).resolve('tus-js-client/dist/tus.min.js');

export function registerPageRoutes(app: FastifyInstance, dir = PUBLIC_DIR): void {
  const files = [
    { url: '/', file: path.join(dir, 'index.html'), type: 'text/html; charset=utf-8' },
    { url: '/app.js', file: path.join(dir, 'app.js'), type: 'text/javascript; charset=utf-8' },
    { url: '/vendor/tus.min.js', file: TUS_BROWSER_BUILD, type: 'text/javascript; charset=utf-8' },
  ];
  for (const { url, file, type } of files) {
    const body = readFileSync(file);
    app.get(url, { schema: { hide: true } }, async (_request, reply) => {
      reply.type(type).header('content-security-policy', CSP).header('cache-control', 'no-cache');
      return body;
    });
  }
}
