/**
 * Where a webhook may go: WEBHOOK_* settings, the callbackUrl check at acceptance, the address rule
 * at send time (a lookup stands in for DNS), and the POST pinned to the checked address.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type WebhooksConfig } from '../config.js';
import { postWebhook, WebhookTimeout } from '../jobs/webhook-post.js';
import { checkCallbackUrl, isPublicAddress, parseAllowedHosts, resolveTarget, WebhookRefused } from '../jobs/webhook-target.js';
import { deliveryId, WebhookSender } from '../jobs/webhooks.js';

const base = { POSE_PYTHON: process.execPath, POSE_MODEL: 'synthetic', POSE_WORKERS: '1' };
const webhooks = (env: Record<string, string>): WebhooksConfig => loadConfig({ ...base, ...env }).webhooks;
const on = (hosts: string, more: Record<string, string> = {}) =>
  webhooks({ WEBHOOK_SECRET: 'whsec-unit-0123456789abcdef', WEBHOOK_ALLOWED_HOSTS: hosts, ...more });

describe('WEBHOOK_* settings', () => {
  it('defaults: off (no secret, no host), 6 attempts from 1 s doubling to 60 s, 10 s per attempt', () => {
    expect(webhooks({})).toEqual({
      secret: null,
      allowedHosts: [],
      allowPrivate: false,
      timeoutMs: 10_000,
      maxAttempts: 6,
      backoffInitialMs: 1000,
      backoffMaxMs: 60_000,
    });
  });

  it('parses host names, IP addresses and ports', () => {
    expect(parseAllowedHosts(' Hooks.Example.com , 127.0.0.1:8080,[::1]:9000, example.org:443,')).toEqual([
      { host: 'hooks.example.com', port: null, literal: false },
      { host: '127.0.0.1', port: 8080, literal: true },
      { host: '[::1]', port: 9000, literal: true },
      { host: 'example.org', port: 443, literal: false },
    ]);
  });

  it.each([
    ['WEBHOOK_ALLOWED_HOSTS', 'https://example.com'],
    ['WEBHOOK_ALLOWED_HOSTS', 'example.com/hooks'],
    ['WEBHOOK_ALLOWED_HOSTS', 'user@example.com'],
    ['WEBHOOK_ALLOWED_HOSTS', '*.example.com'],
    ['WEBHOOK_ALLOWED_HOSTS', 'example.com:0'],
    ['WEBHOOK_ALLOWED_HOSTS', 'example.com:99999'],
    ['WEBHOOK_SECRET', 'short'],
    ['WEBHOOK_MAX_ATTEMPTS', '0'],
    ['WEBHOOK_TIMEOUT_MS', 'ten'],
    ['WEBHOOK_ALLOW_PRIVATE', 'maybe'],
  ])('refuses %s=%s at start, naming it', (name, value) => {
    expect(() => webhooks({ [name]: value })).toThrow(expect.objectContaining({ name: 'ConfigError', variable: name }));
  });
});

describe('callbackUrl at acceptance', () => {
  const config = on('hooks.example.com,127.0.0.1:8080,example.org:443');

  it('keeps an allowed http(s) URL, normalised, without its fragment', () => {
    expect(checkCallbackUrl('https://HOOKS.example.com/a/b?token=x#frag', config)).toBe('https://hooks.example.com/a/b?token=x');
    expect(checkCallbackUrl('http://hooks.example.com:9999/x', config)).toBe('http://hooks.example.com:9999/x'); // a bare name: any port
    expect(checkCallbackUrl('http://127.0.0.1:8080/x', config)).toBe('http://127.0.0.1:8080/x');
    expect(checkCallbackUrl('https://example.org/x', config)).toBe('https://example.org/x'); // 443 is https's own
    // Compared in the URL parser's canonical form: 2130706433 is 127.0.0.1.
    expect(checkCallbackUrl('http://2130706433:8080/x', config)).toBe('http://127.0.0.1:8080/x');
  });

  it.each([
    ['http://127.0.0.1:8081/x', 'CALLBACK_NOT_ALLOWED'], // the listed port only
    ['http://example.org/x', 'CALLBACK_NOT_ALLOWED'], // port 80, where 443 is listed
    ['https://evil.example.net/x', 'CALLBACK_NOT_ALLOWED'],
    ['https://hooks.example.com.evil.net/x', 'CALLBACK_NOT_ALLOWED'],
    ['ftp://hooks.example.com/x', 'BAD_FIELD'],
    ['file:///etc/passwd', 'BAD_FIELD'],
    ['https://user:pw@hooks.example.com/x', 'BAD_FIELD'],
    ['hooks.example.com/x', 'BAD_FIELD'],
    [`https://hooks.example.com/${'a'.repeat(1100)}`, 'BAD_FIELD'],
  ])('%s → %s', (url, code) => {
    expect(() => checkCallbackUrl(url, config)).toThrow(expect.objectContaining({ code, status: 400, details: { field: 'callbackUrl' } }));
  });

  it('is refused whatever it names while WEBHOOK_SECRET or WEBHOOK_ALLOWED_HOSTS is unset, naming the setting', () => {
    const noSecret = webhooks({ WEBHOOK_ALLOWED_HOSTS: 'hooks.example.com' });
    expect(() => checkCallbackUrl('https://hooks.example.com/x', noSecret)).toThrow(/WEBHOOK_SECRET/);
    const noHosts = webhooks({ WEBHOOK_SECRET: 'whsec-unit-0123456789abcdef' });
    expect(() => checkCallbackUrl('https://hooks.example.com/x', noHosts)).toThrow(
      expect.objectContaining({ code: 'CALLBACK_NOT_ALLOWED', message: expect.stringMatching(/WEBHOOK_ALLOWED_HOSTS/) }),
    );
  });
});

describe('the target at send time', () => {
  const config = on('hooks.example.com,127.0.0.1:8080');
  const dns = (...addresses: string[]) => {
    const calls: string[] = [];
    const lookup = async (host: string) => {
      calls.push(host);
      return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
    };
    return { lookup, calls };
  };

  it('connects to the public address the name resolves to', async () => {
    const { lookup } = dns('93.184.216.34', '2606:2800:220:1::1');
    await expect(resolveTarget(new URL('https://hooks.example.com/x'), config, lookup)).resolves.toEqual({
      address: '93.184.216.34',
      family: 4,
    });
  });

  it.each([
    ['127.0.0.1'],
    ['10.1.2.3'],
    ['172.20.0.1'],
    ['192.168.1.1'],
    ['169.254.169.254'],
    ['100.64.0.1'],
    ['0.0.0.0'],
    ['::1'],
    ['fd00::1'],
    ['fe80::1'],
    ['::ffff:10.0.0.1'],
    ['::ffff:7f00:1'],
    ['64:ff9b::a00:1'],
  ])('refuses an allowed name that resolves to %s (rebinding, a name pointing inside)', async (inside) => {
    const { lookup } = dns('93.184.216.34', inside);
    await expect(resolveTarget(new URL('https://hooks.example.com/x'), config, lookup)).rejects.toThrow(WebhookRefused);
    expect(isPublicAddress(inside)).toBe(false);
  });

  it('lets WEBHOOK_ALLOW_PRIVATE through, takes a listed IP as it is, and re-checks the list of the sending replica', async () => {
    const { lookup } = dns('10.1.2.3');
    const open = on('hooks.example.com', { WEBHOOK_ALLOW_PRIVATE: 'true' });
    await expect(resolveTarget(new URL('https://hooks.example.com/x'), open, lookup)).resolves.toEqual({ address: '10.1.2.3', family: 4 });
    const literal = dns();
    await expect(resolveTarget(new URL('http://127.0.0.1:8080/x'), config, literal.lookup)).resolves.toEqual({
      address: '127.0.0.1',
      family: 4,
    });
    expect(literal.calls).toEqual([]); // no lookup for an address
    const elsewhere = on('other.example.com');
    await expect(resolveTarget(new URL('https://hooks.example.com/x'), elsewhere, lookup)).rejects.toThrow(/not in this replica's/);
  });

  it('a failed lookup is not a refusal (it is tried again)', async () => {
    const lookup = async () => {
      throw Object.assign(new Error('getaddrinfo EAI_AGAIN hooks.example.com'), { code: 'EAI_AGAIN' });
    };
    const err = await resolveTarget(new URL('https://hooks.example.com/x'), config, lookup).catch((e: Error) => e);
    expect(err).not.toBeInstanceOf(WebhookRefused);
    expect(isPublicAddress('93.184.216.34')).toBe(true);
    expect(isPublicAddress('2606:2800:220:1::1')).toBe(true);
  });
});

describe('the POST', () => {
  let server: http.Server;
  let port: number;
  const seen: { host?: string; url?: string; body: string }[] = [];
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        seen.push({ host: req.headers.host, url: req.url, body });
        if (req.url === '/silent') return; // never answers
        if (req.url === '/redirect') res.writeHead(302, { location: '/elsewhere' }).end();
        else res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('goes to the checked address with the name as its Host (no second lookup: the name does not even resolve)', async () => {
    const url = new URL(`http://hooks.invalid:${port}/in?q=1`);
    const res = await postWebhook(
      url,
      { address: '127.0.0.1', family: 4 },
      '{"a":1}',
      { 'content-type': 'application/json' },
      { timeoutMs: 2000 },
    );
    expect(res.status).toBe(204);
    expect(seen.at(-1)).toEqual({ host: `hooks.invalid:${port}`, url: '/in?q=1', body: '{"a":1}' });
  });

  it('answers a redirect with its status, not following it; a silent receiver is a timeout', async () => {
    const target = { address: '127.0.0.1', family: 4 } as const;
    const before = seen.length;
    expect((await postWebhook(new URL(`http://127.0.0.1:${port}/redirect`), target, '{}', {}, { timeoutMs: 2000 })).status).toBe(302);
    expect(seen.slice(before).map((s) => s.url)).toEqual(['/redirect']);
    const started = Date.now();
    await expect(postWebhook(new URL(`http://127.0.0.1:${port}/silent`), target, '{}', {}, { timeoutMs: 300 })).rejects.toThrow(
      WebhookTimeout,
    );
    expect(Date.now() - started).toBeLessThan(2000);
  });
});

describe('delivery ids and backoff', () => {
  it('one id per job, shaped as a UUID', () => {
    expect(deliveryId('3eed0000-0000-4000-8000-000000000000')).toBe(deliveryId('3eed0000-0000-4000-8000-000000000000'));
    expect(deliveryId('a')).not.toBe(deliveryId('b'));
    expect(deliveryId('a')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('waits WEBHOOK_BACKOFF_INITIAL_MS after the first failure, doubling, capped at WEBHOOK_BACKOFF_MAX_MS', () => {
    const sender = new WebhookSender(on('hooks.example.com'), undefined as never);
    expect([1, 2, 3, 4, 5, 6, 7, 8, 100].map((n) => sender.backoffMs(n))).toEqual([
      1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000, 60_000,
    ]);
  });
});
