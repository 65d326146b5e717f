/**
 * A webhook receiver for the tests: an HTTP server on 127.0.0.1 that records every request (path,
 * headers, raw body) and answers each path from a script of statuses (200 once the script is used up).
 */
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { waitFor } from './test-server.js';

export interface ReceivedHook {
  path: string;
  headers: IncomingHttpHeaders;
  /** The body as received, before any parsing (what the signature covers). */
  body: string;
  /** Date.now() when it arrived. */
  at: number;
}

/** An answer: a status, and headers (a redirect's Location). */
export interface HookAnswer {
  status: number;
  headers?: Record<string, string>;
}

export interface WebhookReceiver {
  port: number;
  url(path: string): string;
  /** Every request so far, in order. */
  hooks: ReceivedHook[];
  /** The requests to one path. */
  to(path: string): ReceivedHook[];
  /** The next requests to `path` get these answers, in order. */
  script(path: string, ...answers: (number | HookAnswer)[]): void;
  /** Resolves with the requests to `path` once there are at least `n`. */
  waitFor(path: string, n: number, timeoutMs?: number): Promise<ReceivedHook[]>;
  close(): Promise<void>;
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const hooks: ReceivedHook[] = [];
  const scripts = new Map<string, HookAnswer[]>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '/';
      hooks.push({ path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() });
      const answer = scripts.get(path)?.shift() ?? { status: 200 };
      res.writeHead(answer.status, { 'content-type': 'text/plain', ...answer.headers });
      res.end(`${answer.status}\n`);
    });
  });
  server.keepAliveTimeout = 100;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const to = (path: string) => hooks.filter((h) => h.path === path);
  return {
    port,
    url: (path) => `http://127.0.0.1:${port}${path}`,
    hooks,
    to,
    script(path, ...answers) {
      scripts.set(
        path,
        answers.map((a) => (typeof a === 'number' ? { status: a } : a)),
      );
    },
    waitFor: (path, n, timeoutMs = 20_000) => waitFor(async () => to(path).length >= n && to(path), timeoutMs),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
