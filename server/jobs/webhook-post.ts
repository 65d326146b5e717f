/**
 * One webhook request: a POST to the address webhook-target.ts checked, never another. The URL's
 * host name stays the Host header and the TLS name (SNI, certificate check); only the connection's
 * address is pinned, by a lookup that answers with the checked address (no second DNS query, so a
 * rebinding DNS server cannot switch the target between the check and the connect). Redirects are
 * not followed (the status is the answer), the whole exchange is bounded by a timeout, and at most
 * a few KB of the answer's body are read, then the connection goes.
 */
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import net from 'node:net';

/** Bytes of the receiver's answer read (and dropped) before the connection is closed. */
const READ_AT_MOST = 4096;

export class WebhookTimeout extends Error {
  constructor(ms: number) {
    super(`no answer within ${ms} ms (WEBHOOK_TIMEOUT_MS)`);
    this.name = 'WebhookTimeout';
  }
}

export interface PostTarget {
  address: string;
  family: 4 | 6;
}

/** Sends `body`; resolves with the answer's status (any status: the caller judges it), rejects on a network error or the timeout. */
export function postWebhook(
  url: URL,
  target: PostTarget,
  body: string,
  headers: Record<string, string>,
  opts: { timeoutMs: number; signal?: AbortSignal },
): Promise<{ status: number }> {
  const hostname = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const secure = url.protocol === 'https:';
  // Node's connect may ask for one address or for all (autoSelectFamily): either way, only the checked one.
  const pinned = ((_host: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
    if (options?.all) callback(null, [{ address: target.address, family: target.family }]);
    else callback(null, target.address, target.family);
  }) as unknown as LookupFunction;
  return new Promise((resolve, reject) => {
    const request = (secure ? https : http).request({
      method: 'POST',
      protocol: url.protocol,
      hostname,
      port: url.port ? Number(url.port) : secure ? 443 : 80,
      path: `${url.pathname}${url.search}`,
      headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
      lookup: pinned,
      // A fresh connection each time: no pooled socket to an address checked earlier.
      agent: false,
      ...(secure && net.isIP(hostname) === 0 ? { servername: hostname } : {}),
      signal: opts.signal,
    });
    let status: number | undefined;
    let settled = false;
    const settle = (err: Error | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      request.destroy();
      if (err) reject(err);
      else resolve({ status: status ?? 0 });
    };
    // Past the timeout: no answer is a failure; an answer whose body still trickles counts by its status.
    const timer = setTimeout(() => settle(status === undefined ? new WebhookTimeout(opts.timeoutMs) : null), opts.timeoutMs);
    timer.unref();
    request.once('error', (err) => settle(status === undefined ? err : null));
    request.once('response', (res) => {
      status = res.statusCode ?? 0;
      let read = 0;
      const done = () => settle(null);
      res.on('data', (chunk: Buffer) => {
        read += chunk.length;
        if (read >= READ_AT_MOST) done();
      });
      res.once('end', done);
      res.once('error', done);
      res.once('close', done);
    });
    request.end(body);
  });
}
