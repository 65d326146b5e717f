/**
 * Downloading one model file or archive: a quick reachability probe of each URL (so no network fails in
 * seconds, not after a long TCP timeout), a streamed download with sha256 and byte count, and only then, after
 * every check passed, a rename into place. A plain file is written to `DEST.part`; a .tar.gz is streamed
 * through gunzip and the tar reader (tar-members.ts) straight into a staging folder inside POSE_MODELS_DIR,
 * only its wanted members. The caller's `verify` (the key-manifest check) runs on the temporary files.
 * Whatever fails, the temporary files are removed: nothing partial remains.
 */
import { createHash } from 'node:crypto';
import {
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import path from 'node:path';
import { Readable, Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { DownloadFile, DownloadPlainFile, DownloadTarball } from './model-sources.js';
import { safeMemberName, TarError, TarMemberWriter } from './tar-members.js';

export type DownloadErrorCode =
  | 'NETWORK_UNREACHABLE'
  | 'HTTP_ERROR'
  | 'DOWNLOAD_STALLED'
  | 'DOWNLOAD_INTERRUPTED'
  | 'SIZE_MISMATCH'
  | 'CHECKSUM_MISMATCH'
  | 'UNPACK_FAILED'
  | 'MANIFEST_MISMATCH'
  | 'VERIFIER_UNAVAILABLE';

export class DownloadError extends Error {
  constructor(
    readonly code: DownloadErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'DownloadError';
  }
}

/** Temporary files and staging folders of the downloads under way (removed by their own `finally`). */
const inFlight = new Set<string>();

/** Removes every temporary file of the downloads under way, synchronously: for SIGINT/SIGTERM handlers. */
export function removeInFlight(): void {
  for (const p of inFlight) rmSync(p, { recursive: true, force: true });
  inFlight.clear();
}

const STAGING_PREFIX = '.download-';

/** Removes staging folders that a killed earlier run left in modelsDir (their process is gone). */
export function removeStaleStaging(modelsDir: string): string[] {
  if (!existsSync(modelsDir)) return [];
  const removed: string[] = [];
  for (const entry of readdirSync(modelsDir)) {
    const pid = Number(entry.startsWith(STAGING_PREFIX) ? entry.slice(STAGING_PREFIX.length).split('-')[0] : NaN);
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) continue;
    try {
      process.kill(pid, 0);
      continue; // still running: its own download
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') continue;
    }
    rmSync(path.join(modelsDir, entry), { recursive: true, force: true });
    removed.push(entry);
  }
  return removed;
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
    const why =
      e.name === 'TimeoutError' || e.name === 'AbortError'
        ? `no answer within ${timeoutMs / 1000} s`
        : (e.cause?.code ?? e.cause?.message ?? e.message);
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
  /** Reachability probe timeout per URL. */
  connectTimeoutMs?: number;
  /** Abort when no byte arrives for this long. */
  stallTimeoutMs?: number;
  log?: (line: string) => void;
  /** Runs once a URL answered, before the transfer starts (e.g. checks that the verifier can run). */
  beforeDownload?: () => Promise<void>;
  /**
   * Runs on the temporary files before they are moved into place (throw to refuse them): temporary path ->
   * destination relative to modelsDir.
   */
  verify?: (staged: { path: string; dest: string }[]) => Promise<void>;
}

/** The byte count and sha256 of what went through, plus progress lines and stall detection. */
class Meter extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;
  private nextReport = 0.1;
  constructor(
    private readonly total: number,
    private readonly onData: () => void,
    private readonly report: (line: string) => void,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null, data?: Buffer) => void): void {
    this.onData();
    this.hash.update(chunk);
    this.bytes += chunk.length;
    if (this.total && this.bytes / this.total >= this.nextReport) {
      this.report(`${Math.floor((100 * this.bytes) / this.total)}% of ${(this.total / 1e6).toFixed(1)} MB`);
      while (this.bytes / this.total >= this.nextReport) this.nextReport += 0.1;
    }
    done(null, chunk);
  }
}

/**
 * The pipeline tail for a response. `gzipDecoded`: the server sent the body with Content-Encoding gzip (as Apache
 * does for .gz files with AddEncoding) and fetch has already removed that gzip layer.
 */
type Sinks = (gzipDecoded: boolean) => [Transform | Writable, ...(Transform | Writable)[]];

/**
 * Fetches `url` through the meter into `sinks` (a pipeline tail: a file, or gunzip + tar reader), then checks
 * the recorded size and sha256. `name` labels progress lines.
 */
async function fetchInto(
  file: DownloadFile,
  url: string,
  sinks: Sinks,
  opts: DownloadOptions,
  name: string,
): Promise<{ bytes: number; sha256: string }> {
  const log = opts.log ?? (() => {});
  const controller = new AbortController();
  const stallMs = opts.stallTimeoutMs ?? 30_000;
  let stall = setTimeout(() => controller.abort(), stallMs);
  const touch = () => {
    clearTimeout(stall);
    stall = setTimeout(() => controller.abort(), stallMs);
  };
  let meter: Meter | undefined;
  try {
    let res: Response;
    try {
      res = await fetch(url, { signal: controller.signal, redirect: 'follow' });
    } catch (err) {
      throw controller.signal.aborted
        ? new DownloadError('DOWNLOAD_STALLED', `${url}: no answer within ${stallMs / 1000} s`)
        : new DownloadError('NETWORK_UNREACHABLE', `${url}: ${(err as Error).message}`);
    }
    if (!res.ok || !res.body) {
      await res.body?.cancel();
      throw new DownloadError('HTTP_ERROR', `${url}: HTTP ${res.status} ${res.statusText}`);
    }
    const encoding = (res.headers.get('content-encoding') ?? 'identity').trim().toLowerCase();
    // with a content encoding, Content-Length counts the encoded bytes, not the file's
    const announced = encoding === 'identity' ? Number(res.headers.get('content-length')) || 0 : 0;
    if (file.size !== undefined && announced && announced !== file.size) {
      await res.body.cancel();
      throw new DownloadError(
        'SIZE_MISMATCH',
        `${url}: the server announces ${announced} bytes, expected ${file.size} (${file.integrity})`,
      );
    }
    meter = new Meter(announced || file.size || 0, touch, (line) => log(`${name}: ${line}`));
    const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
    try {
      await pipeline(body, meter, ...sinks(encoding === 'gzip' || encoding === 'x-gzip'));
    } catch (err) {
      if (controller.signal.aborted) {
        throw new DownloadError('DOWNLOAD_STALLED', `${url}: no data for ${stallMs / 1000} s after ${meter.bytes} bytes`);
      }
      if (err instanceof TarError || (err as NodeJS.ErrnoException).code?.startsWith('Z_')) {
        throw new DownloadError(
          'UNPACK_FAILED',
          `${url}: ${err instanceof TarError ? '' : 'gzip: '}${(err as Error).message} (after ${meter.bytes} bytes)`,
        );
      }
      if ((err as NodeJS.ErrnoException).syscall) throw err; // a local file system error (disk full, permissions)
      throw new DownloadError('DOWNLOAD_INTERRUPTED', `${url}: connection lost after ${meter.bytes} bytes (${(err as Error).message})`);
    }
  } finally {
    clearTimeout(stall);
  }
  const digest = meter.hash.digest('hex');
  if (file.size !== undefined && meter.bytes !== file.size) {
    throw new DownloadError('SIZE_MISMATCH', `${url}: got ${meter.bytes} bytes, expected ${file.size} (${file.integrity})`);
  }
  if (file.sha256 && digest !== file.sha256.toLowerCase()) {
    throw new DownloadError('CHECKSUM_MISMATCH', `${url}: sha256 ${digest}, expected ${file.sha256} (${file.integrity})`);
  }
  return { bytes: meter.bytes, sha256: digest };
}

/**
 * Tries the file's URLs in turn: a URL whose host does not answer the probe, or that answers an HTTP error, gives
 * way to the next. NETWORK_UNREACHABLE when no host answered, HTTP_ERROR when one answered with an error.
 */
async function fetchFromAny(
  file: DownloadFile,
  sinks: Sinks,
  opts: DownloadOptions,
  name: string,
  beforeEachTry: () => void,
): Promise<{ bytes: number; sha256: string; url: string }> {
  const log = opts.log ?? (() => {});
  const urls = [file.url, ...(file.mirrors ?? [])];
  const failures: DownloadError[] = [];
  for (const url of urls) {
    try {
      await probeHost(url, opts.connectTimeoutMs ?? 5000);
      await opts.beforeDownload?.();
      beforeEachTry();
      log(`${name}: downloading ${url}`);
      return { ...(await fetchInto(file, url, sinks, opts, name)), url };
    } catch (err) {
      if (!(err instanceof DownloadError) || (err.code !== 'NETWORK_UNREACHABLE' && err.code !== 'HTTP_ERROR')) throw err;
      failures.push(err);
      if (url !== urls[urls.length - 1]) log(`${name}: ${err.message}; trying ${urls[urls.indexOf(url) + 1]}`);
    }
  }
  const code = failures.some((f) => f.code === 'HTTP_ERROR') ? 'HTTP_ERROR' : 'NETWORK_UNREACHABLE';
  throw new DownloadError(code, failures.map((f) => f.message).join('; '));
}

/** Downloads one plain file into modelsDir (skipping it when already there and intact); returns its path. */
export async function downloadFile(spec: DownloadPlainFile, opts: DownloadOptions): Promise<string> {
  const log = opts.log ?? (() => {});
  const dest = path.join(opts.modelsDir, spec.dest);
  if ((spec.size !== undefined || spec.sha256) && (await matches(dest, spec))) {
    log(`${spec.dest}: already there and intact`);
    return dest;
  }
  mkdirSync(path.dirname(dest), { recursive: true });
  const part = `${dest}.part`;
  inFlight.add(part);
  try {
    const got = await fetchFromAny(
      spec,
      () => [createWriteStream(part)],
      opts,
      spec.dest,
      () => rmSync(part, { force: true }),
    );
    log(
      `${spec.dest}: ${(got.bytes / 1e6).toFixed(1)} MB, sha256 ${got.sha256}` +
        (spec.sha256 ? ' (verified)' : spec.size !== undefined ? ' (size verified)' : ' (no recorded checksum)'),
    );
    if (opts.verify) await opts.verify([{ path: part, dest: spec.dest }]);
    renameSync(part, dest);
    return dest;
  } finally {
    rmSync(part, { force: true });
    inFlight.delete(part);
  }
}

/**
 * Streams a .tar.gz and writes its wanted members into a staging folder inside modelsDir; after the gzip
 * and tar streams completed, the size/sha256 and `verify` passed, moves them to their destinations.
 * Returns the destination paths.
 */
export async function downloadArchive(file: DownloadTarball, opts: DownloadOptions): Promise<string[]> {
  const log = opts.log ?? (() => {});
  const name = path.basename(new URL(file.url).pathname);
  mkdirSync(opts.modelsDir, { recursive: true });
  for (const stale of removeStaleStaging(opts.modelsDir)) log(`removed ${stale} (left by an interrupted run)`);
  const staging = mkdtempSync(path.join(opts.modelsDir, `${STAGING_PREFIX}${process.pid}-`));
  inFlight.add(staging);
  const members = file.members.map((m, i) => ({ ...m, key: safeMemberName(m.path), staged: path.join(staging, `member-${i}`) }));
  let writer: TarMemberWriter | undefined;
  try {
    await fetchFromAny(
      file,
      (gzipDecoded) => {
        writer = new TarMemberWriter(new Map(members.map((m) => [m.key, m.staged])));
        if (gzipDecoded) log(`${name}: served with Content-Encoding gzip (already decompressed by the transfer)`);
        return gzipDecoded ? [writer] : [createGunzip(), writer];
      },
      opts,
      name,
      () => {
        for (const m of members) rmSync(m.staged, { force: true });
      },
    );
    if (!writer) throw new Error(`${name}: the download completed without reading the archive`);
    const missing = writer.missing();
    if (missing.length) {
      const names = writer.summary.names;
      const near = missing.flatMap((want) => names.filter((n) => path.posix.basename(n) === path.posix.basename(want)));
      throw new DownloadError(
        'UNPACK_FAILED',
        `${name} has no ${missing.join(', ')} (it holds ${names.length} members` +
          (near.length
            ? `; same file name at ${near.slice(0, 3).join(', ')}`
            : names.length
              ? `, e.g. ${names.slice(0, 3).join(', ')}`
              : '') +
          ')',
      );
    }
    log(`${name}: gzip and tar streams complete; took ${members.map((m) => m.key).join(', ')}`);
    if (opts.verify) await opts.verify(members.map((m) => ({ path: m.staged, dest: m.dest })));
    const placed: string[] = [];
    for (const m of members) {
      const dest = path.join(opts.modelsDir, m.dest);
      mkdirSync(path.dirname(dest), { recursive: true });
      renameSync(m.staged, dest);
      placed.push(dest);
    }
    return placed;
  } finally {
    rmSync(staging, { recursive: true, force: true });
    inFlight.delete(staging);
  }
}
