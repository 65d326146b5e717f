/**
 * A response of newline-delimited JSON (application/x-ndjson), one object per line, written as the
 * pipeline produces them. Nothing is sent until the first line, so an error before it is still an
 * ordinary error response; after it, an error is the last line (`{"error": {...}}`, the catalogue's
 * shape). Each write waits while the client is behind (the socket's buffer is full): a slow reader
 * slows the pipeline instead of growing a buffer.
 */
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';

export const NDJSON = 'application/x-ndjson';

/** The client asked for NDJSON (Accept: application/x-ndjson). */
export function wantsNdjson(request: FastifyRequest): boolean {
  return (request.headers.accept ?? '').split(',').some((part) => part.trim().split(';')[0].toLowerCase() === NDJSON);
}

export class NdjsonReply {
  private body: PassThrough | null = null;

  constructor(
    private readonly reply: FastifyReply,
    private readonly signal: AbortSignal,
  ) {}

  /** Whether the 200 and a first line have gone (an error is then a line, not a status). */
  get started(): boolean {
    return this.body !== null;
  }

  async write(lines: readonly unknown[]): Promise<void> {
    if (lines.length === 0) return;
    if (!this.body) {
      this.body = new PassThrough();
      void this.reply.code(200).type(NDJSON).header('cache-control', 'no-store').send(this.body);
    }
    for (const line of lines) {
      if (this.signal.aborted) throw this.signal.reason;
      if (!this.body.write(`${JSON.stringify(line)}\n`)) await once(this.body, 'drain', { signal: this.signal });
    }
  }

  /** The last line, and the end of the response. */
  async end(last: unknown): Promise<void> {
    await this.write([last]);
    this.body?.end();
  }
}
