/**
 * Downloading one model file: a quick reachability probe (so no network fails in seconds, not after a
 * long TCP timeout), a streamed download to `DEST.part` with sha256, the checks, an atomic rename, and
 * unpacking of tarballs.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { DownloadFile } from './model-sources.js';

export type DownloadErrorCode =
  | 'NETWORK_UNREACHABLE'
  | 'HTTP_ERROR'
  | 'DOWNLOAD_STALLED'
  | 'SIZE_MISMATCH'
  | 'CHECKSUM_MISMATCH'
  | 'UNPACK_FAILED';

export class DownloadError extends Error {
  constructor(
    readonly code: DownloadErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'DownloadError';
  }
}

/**
 * Asks the URL's server for its headers (HEAD) within `timeoutMs`: any HTTP answer means reachable.
 * (A bare TCP connect is not enough: some networks accept every connection and never answer.)
 * Rejects with NETWORK_UNREACHABLE.
 */
export async function probeHost(url: string, timeoutMs: number): Promise<void> {
  const host = new URL(url).host;
  try {
    const res = await fetch(url, { method: 'HEAD', redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel();
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    const why = e.name === 'TimeoutError' || e.name === 'AbortError' ? `no answer within ${timeoutMs / 1000} s` : (e.cause?.code ?? e.cause?.message ?? e.message);
    throw new DownloadError('NETWORK_UNREACHABLE', `cannot reach ${host} (${why})`);
  }
}

export async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

/** Does `file` match the recorded size and sha256 (those that are recorded)? */
export async function matches(file: string, expected: Pick<DownloadFile, 'sha256' | 'size'>): Promise<boolean> {
  if (!existsSync(file)) return false;
  if (expected.size !== undefined && statSync(file).size !== expected.size) return false;
  if (expected.sha256 && (await sha256Of(file)) !== expected.sha256.toLowerCase()) return false;
  return true;
}

export interface DownloadOptions {
  modelsDir: string;
  /** Connect probe timeout. */
  connectTimeoutMs?: number;
  /** Abort when no byte arrives for this long. */
  stallTimeoutMs?: number;
  log?: (line: string) => void;
}

/** Downloads one file into modelsDir (skipping it when already there and intact); returns its path. */
export async function downloadFile(file: DownloadFile, opts: DownloadOptions): Promise<string> {
  const log = opts.log ?? (() => {});
  const dest = path.join(opts.modelsDir, file.dest);
  if (await matches(dest, file)) {
    log(`${file.dest}: already there and intact`);
    return dest;
  }
  await probeHost(file.url, opts.connectTimeoutMs ?? 5000);

  mkdirSync(path.dirname(dest), { recursive: true });
  const part = `${dest}.part`;
  const controller = new AbortController();
  const stallMs = opts.stallTimeoutMs ?? 30_000;
  let stall = setTimeout(() => controller.abort(), stallMs);
  const touch = () => {
    clearTimeout(stall);
    stall = setTimeout(() => controller.abort(), stallMs);
  };
  try {
    let res: Response;
    try {
      res = await fetch(file.url, { signal: controller.signal, redirect: 'follow' });
    } catch (err) {
      throw controller.signal.aborted
        ? new DownloadError('DOWNLOAD_STALLED', `${file.url}: no answer within ${stallMs / 1000} s`)
        : new DownloadError('NETWORK_UNREACHABLE', `${file.url}: ${(err as Error).message}`);
    }
    if (!res.ok || !res.body) throw new DownloadError('HTTP_ERROR', `${file.url}: HTTP ${res.status} ${res.statusText}`);
    const total = Number(res.headers.get('content-length')) || file.size || 0;
    const hash = createHash('sha256');
    let received = 0;
    let nextReport = 0.1;
    const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
    body.on('data', (chunk: Buffer) => {
      touch();
      hash.update(chunk);
      received += chunk.length;
      if (total && received / total >= nextReport) {
        log(`${file.dest}: ${Math.floor((100 * received) / total)}% of ${(total / 1e6).toFixed(1)} MB`);
        nextReport += 0.1;
      }
    });
    try {
      await pipeline(body, createWriteStream(part));
    } catch (err) {
      throw controller.signal.aborted
        ? new DownloadError('DOWNLOAD_STALLED', `${file.url}: no data for ${stallMs / 1000} s after ${received} bytes`)
        : new DownloadError('NETWORK_UNREACHABLE', `${file.url}: ${(err as Error).message} after ${received} bytes`);
    }
    if (file.size !== undefined && received !== file.size) {
      throw new DownloadError('SIZE_MISMATCH', `${file.url}: got ${received} bytes, expected ${file.size}`);
    }
    const digest = hash.digest('hex');
    if (file.sha256 && digest !== file.sha256.toLowerCase()) {
      throw new DownloadError('CHECKSUM_MISMATCH', `${file.url}: sha256 ${digest}, expected ${file.sha256}`);
    }
    renameSync(part, dest);
    log(`${file.dest}: ${(received / 1e6).toFixed(1)} MB, sha256 ${digest}${file.sha256 ? ' (verified)' : ''}`);
    return dest;
  } finally {
    clearTimeout(stall);
    rmSync(part, { force: true });
  }
}

/** Unpacks a .tar.gz into `into` with the system tar (GNU tar, bsdtar on macOS and Windows 10+). */
export function unpackTarball(archive: string, into: string): void {
  mkdirSync(into, { recursive: true });
  const r = spawnSync('tar', ['-xzf', archive, '-C', into], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    throw new DownloadError('UNPACK_FAILED', `tar -xzf ${archive}: ${r.error?.message ?? r.stderr.trim()}`);
  }
}
