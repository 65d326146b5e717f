/**
 * Where a job's webhook may go (the SSRF guard), checked twice:
 *   acceptance  callbackUrl is an absolute http(s) URL without credentials whose host (and port)
 *               WEBHOOK_ALLOWED_HOSTS lists, and webhooks are on (WEBHOOK_SECRET set): else 400
 *   send time   the sending replica's own list again, then the host's addresses (dns.lookup, all of
 *               them): a name that resolves to a loopback, private, link-local or other non-public
 *               address is refused (DNS rebinding, an allowed name pointing inside) unless
 *               WEBHOOK_ALLOW_PRIVATE; an IP address the list names is taken as it is. The request
 *               then connects to the address checked here, never to a second lookup's (webhook-post.ts).
 */
import dns from 'node:dns/promises';
import net from 'node:net';
import type { WebhooksConfig } from '../config.js';
import { ApiError } from '../errors.js';

/** One entry of WEBHOOK_ALLOWED_HOSTS: a host name or IP address, and the one port it allows (null: any). */
export interface AllowedHost {
  /** As the URL parser writes a URL's hostname: lower case, punycode, IPv6 in brackets. */
  host: string;
  port: number | null;
  /** An IP address: the operator named the address itself, so it is not held to the public-address rule. */
  literal: boolean;
}

/** The longest callbackUrl accepted (the multipart field limit is the same number of bytes). */
export const CALLBACK_URL_MAX = 1024;

/** Refused by the policy: nothing is sent and the event is not tried again. */
export class WebhookRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WebhookRefused';
  }
}

/** WEBHOOK_ALLOWED_HOSTS: comma-separated `host`, `host:port`, `1.2.3.4:port`, `[::1]:port`; throws on a bad entry. */
export function parseAllowedHosts(raw: string): AllowedHost[] {
  const hosts: AllowedHost[] = [];
  for (const entry of raw.split(',').map((e) => e.trim())) {
    if (!entry) continue;
    if (entry.includes('*')) throw new Error(`"${entry}": wildcards are not supported; list each host`);
    const m = /^(\[[0-9a-fA-F:.]+\]|[^:/?#@\s[\]]+)(?::(\d{1,5}))?$/.exec(entry);
    if (!m) throw new Error(`"${entry}" is not a host name, an IP address, or either with :port (no scheme, path or credentials)`);
    let host: string;
    try {
      host = new URL(`http://${m[1]}/`).hostname;
    } catch {
      throw new Error(`"${entry}" is not a valid host name or IP address`);
    }
    const port = m[2] === undefined ? null : Number(m[2]);
    if (port !== null && (port < 1 || port > 65535)) throw new Error(`"${entry}": the port must be between 1 and 65535`);
    hosts.push({ host, port, literal: net.isIP(bare(host)) !== 0 });
  }
  return hosts;
}

/**
 * A job's callbackUrl as the client sent it → the URL kept (normalised, without its fragment).
 * BAD_FIELD when it is not a usable URL, CALLBACK_NOT_ALLOWED when the policy refuses it.
 */
export function checkCallbackUrl(raw: string, config: WebhooksConfig): string {
  if (!config.secret) {
    notAllowed('webhooks are off on this server: WEBHOOK_SECRET is not set (webhooks are always signed), so callbackUrl cannot be used');
  }
  if (config.allowedHosts.length === 0) {
    notAllowed('webhooks are off on this server: WEBHOOK_ALLOWED_HOSTS is empty, so no callbackUrl host is allowed');
  }
  if (raw.length > CALLBACK_URL_MAX) bad(`callbackUrl is longer than ${CALLBACK_URL_MAX} characters`);
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    return bad('callbackUrl must be an absolute http:// or https:// URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') bad('callbackUrl must be an http:// or https:// URL');
  if (url.username || url.password) bad('callbackUrl must not carry credentials (user:password@); put a token in its path or query');
  if (!allowedEntry(url, config.allowedHosts)) {
    notAllowed(`callbackUrl's host ${url.host} is not in WEBHOOK_ALLOWED_HOSTS`);
  }
  url.hash = '';
  return url.href;
}

/**
 * Send time: the address to connect to, after this replica's allow list and the address rule.
 * Throws WebhookRefused (final) or the lookup's error (ENOTFOUND, EAI_AGAIN: tried again later).
 */
export async function resolveTarget(
  url: URL,
  config: Pick<WebhooksConfig, 'allowedHosts' | 'allowPrivate'>,
  lookup: (host: string) => Promise<{ address: string; family: number }[]> = (host) => dns.lookup(host, { all: true, verbatim: true }),
): Promise<{ address: string; family: 4 | 6 }> {
  const entry = allowedEntry(url, config.allowedHosts);
  if (!entry) throw new WebhookRefused(`${url.host} is not in this replica's WEBHOOK_ALLOWED_HOSTS`);
  const host = bare(url.hostname);
  if (entry.literal) return { address: host, family: net.isIP(host) === 6 ? 6 : 4 };
  const addresses = await lookup(host);
  if (addresses.length === 0) throw new Error(`${host} resolved to no address`);
  if (!config.allowPrivate) {
    const inside = addresses.find((a) => !isPublicAddress(a.address));
    if (inside) {
      throw new WebhookRefused(
        `${host} resolves to ${inside.address}, a non-public address (loopback, private, link-local or reserved); ` +
          'list that address in WEBHOOK_ALLOWED_HOSTS, or set WEBHOOK_ALLOW_PRIVATE=true',
      );
    }
  }
  const [first] = addresses;
  return { address: first.address, family: first.family === 6 ? 6 : 4 };
}

/** The allow-list entry that lets this URL through: same host, and the entry's port if it names one. */
export function allowedEntry(url: URL, hosts: readonly AllowedHost[]): AllowedHost | undefined {
  const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
  return hosts.find((h) => h.host === url.hostname && (h.port === null || h.port === port));
}

const NON_PUBLIC = new net.BlockList();
for (const [prefix, bits] of [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, cloud metadata (169.254.169.254)
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const) {
  NON_PUBLIC.addSubnet(prefix, bits, 'ipv4');
}
for (const [prefix, bits] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
  ['2001:db8::', 32], // documentation
] as const) {
  NON_PUBLIC.addSubnet(prefix, bits, 'ipv6');
}

/** Public unicast: not loopback, private, link-local, shared, multicast or reserved (an IPv4 inside IPv6 is judged as IPv4). */
export function isPublicAddress(address: string): boolean {
  const family = net.isIP(address);
  if (family === 4) return !NON_PUBLIC.check(address, 'ipv4');
  if (family !== 6) return false;
  const embedded = embeddedIPv4(address);
  if (embedded) return isPublicAddress(embedded);
  return !NON_PUBLIC.check(address, 'ipv6');
}

/** The IPv4 address inside an IPv4-mapped (::ffff:a.b.c.d) or NAT64 (64:ff9b::a.b.c.d) IPv6 address. */
function embeddedIPv4(address: string): string | null {
  const words = expandIPv6(address);
  if (!words) return null;
  const mapped = words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff;
  const nat64 = words[0] === 0x64 && words[1] === 0xff9b && words.slice(2, 6).every((w) => w === 0);
  if (!mapped && !nat64) return null;
  return [words[6] >> 8, words[6] & 0xff, words[7] >> 8, words[7] & 0xff].join('.');
}

/** An IPv6 address as its eight 16-bit words (a dotted IPv4 tail included). */
function expandIPv6(address: string): number[] | null {
  let text = address.toLowerCase();
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted[1].split('.').map(Number);
    text = `${text.slice(0, -dotted[1].length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const missing = 8 - left.length - right.length;
  if (text.includes('::') ? missing < 1 : missing !== 0) return null;
  const words = [...left, ...Array(text.includes('::') ? missing : 0).fill('0'), ...right].map((w) => Number.parseInt(w, 16));
  return words.length === 8 && words.every((w) => w >= 0 && w <= 0xffff) ? words : null;
}

/** A URL hostname without the brackets of an IPv6 address. */
function bare(hostname: string): string {
  return hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
}

function bad(message: string): never {
  throw new ApiError('BAD_FIELD', message, { details: { field: 'callbackUrl' } });
}

function notAllowed(message: string): never {
  throw new ApiError('CALLBACK_NOT_ALLOWED', message, { details: { field: 'callbackUrl' } });
}
