/**
 * Test support for the reliability suite (server/test/reliability-*.test.ts): a private temp
 * folder per test file, a /health recorder, /proc figures of a process, raw HTTP uploads that
 * stream, stall or hang up part-way, and media files made with ffmpeg.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { UploadBody } from './api-bodies.js';
import { findTools } from './tools.js';

/** Text that must never reach a log line, a health body or an API error. */
export const PIPE_NOISE = /\bEOF\b|EPIPE|stdin write failed|write after end/;
/** A stack frame or an absolute path of this machine (API errors must carry neither). */
export const LEAKY = /\n\s+at |\bat [\w.<>]+ \(|\/tmp\/|\/work\/|\/usr\/|\/home\/|node_modules/;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Points os.tmpdir() (TMPDIR) of this test file's process, and of the workers and ffmpeg it
 * spawns, at a fresh folder, so "no temporary file survives" counts only this file's files.
 */
export function privateTmp(label: string): { dir: string; entries: () => string[]; restore: () => void } {
  const previous = process.env.TMPDIR;
  const dir = mkdtempSync(path.join(os.tmpdir(), `rel-${label}-`));
  process.env.TMPDIR = dir;
  // What is left: files and folders in `dir`, except the test's own (keep-*), looking inside the
  // test servers' private request roots (posepool-test-root-*, removed when a server closes).
  const entries = (): string[] =>
    (existsSync(dir) ? readdirSync(dir) : []).flatMap((n) => {
      if (n.startsWith('keep-')) return [];
      if (n.startsWith('posepool-test-root-')) return readdirSync(path.join(dir, n)).map((c) => `${n}/${c}`);
      return [n];
    });
  return {
    dir,
    entries,
    restore: () => {
      if (previous === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = previous;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// /health, recorded

export interface HealthSnapshot {
  at: number;
  http: number;
  status: string;
  ready: number;
  desired: number;
  workers: { id: string; state: string; pid: number | null; restarts: number; lastError: Record<string, unknown> | null }[];
}

export async function getHealth(url: string): Promise<HealthSnapshot> {
  const res = await fetch(`${url}/health`);
  const body = (await res.json()) as Omit<HealthSnapshot, 'at' | 'http'>;
  return { at: Date.now(), http: res.status, ...body };
}

/** Polls /health every `everyMs` and keeps what it saw, to check that it told the truth at each step. */
export class HealthRecorder {
  readonly snapshots: HealthSnapshot[] = [];
  private running = true;
  private readonly loop: Promise<void>;

  constructor(
    private readonly url: string,
    everyMs = 30,
  ) {
    this.loop = (async () => {
      while (this.running) {
        try {
          this.snapshots.push(await getHealth(this.url));
        } catch {
          // the server is closing
        }
        await sleep(everyMs);
      }
    })();
  }

  async stop(): Promise<HealthSnapshot[]> {
    this.running = false;
    await this.loop;
    return this.snapshots;
  }

  since(t: number): HealthSnapshot[] {
    return this.snapshots.filter((s) => s.at >= t);
  }

  /** Distinct consecutive statuses seen since `t` (e.g. ["ready", "degraded", "ready"]). */
  statuses(t = 0): string[] {
    const out: string[] = [];
    for (const s of this.since(t)) if (out[out.length - 1] !== s.status) out.push(s.status);
    return out;
  }
}

export const totalRestarts = (h: HealthSnapshot) => h.workers.reduce((n, w) => n + w.restarts, 0);

/** The HTTP code /health must answer for its own body (minReady 1). */
export const httpForStatus = (h: HealthSnapshot) => (h.ready >= 1 ? 200 : 503);

// ---------------------------------------------------------------------------------------------
// processes, from /proc (Linux)

export interface ProcFigures {
  rssKb: number;
  fds: number;
  /** Live (non-zombie) children: pid and command name. */
  children: { pid: number; comm: string }[];
}

export function procFigures(pid: number): ProcFigures {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  const fds = readdirSync(`/proc/${pid}/fd`).length;
  return { rssKb, fds, children: childrenOf(pid) };
}

export function childrenOf(pid: number): { pid: number; comm: string }[] {
  const out: { pid: number; comm: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === pid && fields[0] !== 'Z') out.push({ pid: Number(entry), comm });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Open descriptors of `pid` that point into `dir` (temp files held open). */
export function fdsInto(pid: number, dir: string): string[] {
  const out: string[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (target.startsWith(dir)) out.push(target);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// raw multipart over node:http: streamed, cut off, or abandoned

export const BOUNDARY = '----posepoolReliabilityBoundary7MA4YWxkTrZu0gW';

export function multipartHead(fields: Record<string, string>, filename = 'clip.mp4', fieldname = 'video'): Buffer {
  let s = '';
  for (const [k, v] of Object.entries(fields)) {
    s += `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`;
  }
  s += `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${fieldname}"; filename="${filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`;
  return Buffer.from(s, 'utf8');
}

export const multipartTail = () => Buffer.from(`\r\n--${BOUNDARY}--\r\n`, 'utf8');

export interface RawUploadResult {
  status: number | null;
  /** The parsed body (see UploadBody); null when no JSON body came (the client hung up first, or the body was not JSON). */
  json: UploadBody | null;
  text: string;
  headers: http.IncomingHttpHeaders;
  /** Bytes of the body written when the response (or the error) arrived. */
  bytesWritten: number;
  msToResponse: number;
  /** A socket error on the client's side (the server closed the connection early). */
  clientError?: string;
}

export interface RawUploadOptions {
  head: Buffer;
  /** The file's bytes, or a count of filler bytes generated on the fly (never held whole). */
  file: Buffer | number;
  headers?: Record<string, string>;
  chunkBytes?: number;
  /** Hang up (destroy the socket) after this many body bytes; resolves then. */
  hangUpAfterBytes?: number;
  /** Hang up once this resolves (e.g. when the log shows the work started). */
  hangUpWhen?: Promise<unknown>;
  /** Send chunked transfer encoding instead of a Content-Length. */
  chunked?: boolean;
}

/** POSTs a multipart body chunk by chunk with backpressure; stops writing as soon as a response comes. */
export function rawUpload(url: string, o: RawUploadOptions): Promise<RawUploadResult> {
  const tail = multipartTail();
  const fileBytes = typeof o.file === 'number' ? o.file : o.file.length;
  const total = o.head.length + fileBytes + tail.length;
  const chunkBytes = o.chunkBytes ?? 64 * 1024;
  const filler = Buffer.alloc(chunkBytes, 0x5a);
  const t0 = Date.now();
  const target = new URL('/api/upload-video-with-pose', url);
  return new Promise((resolve) => {
    let written = 0;
    let settled = false;
    let responded = false;
    const result: RawUploadResult = { status: null, json: null, text: '', headers: {}, bytesWritten: 0, msToResponse: 0 };
    const finish = (extra: Partial<RawUploadResult> = {}) => {
      if (settled) return;
      settled = true;
      Object.assign(result, extra);
      if (!result.msToResponse) result.msToResponse = Date.now() - t0;
      result.bytesWritten = result.bytesWritten || written;
      resolve(result);
    };
    const req = http.request(target, {
      method: 'POST',
      headers: {
        'content-type': `multipart/form-data; boundary=${BOUNDARY}`,
        ...(o.chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': String(total) }),
        ...o.headers,
      },
    });
    req.on('response', (res) => {
      responded = true;
      result.status = res.statusCode ?? null;
      result.headers = res.headers;
      result.msToResponse = Date.now() - t0;
      result.bytesWritten = written;
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => {
        result.text = text;
        try {
          result.json = JSON.parse(text) as UploadBody;
        } catch {
          /* not JSON */
        }
        finish();
        req.destroy();
      });
      res.on('error', () => finish());
    });
    req.on('error', (err) => {
      // After a response the server may close while we still write: that is expected.
      if (!responded) finish({ clientError: (err as NodeJS.ErrnoException).code ?? err.message });
    });

    const hangUp = () => {
      if (settled) return;
      req.destroy();
      finish({ clientError: 'hung up by the test' });
    };
    void o.hangUpWhen?.then(hangUp);

    const write = (buf: Buffer): Promise<boolean> =>
      new Promise((res) => {
        if (responded || settled || req.destroyed) return res(false);
        const limit = o.hangUpAfterBytes;
        if (limit !== undefined && written + buf.length >= limit) {
          const part = buf.subarray(0, Math.max(0, limit - written));
          req.write(part, () => {
            written += part.length;
            setTimeout(hangUp, 50);
            res(false);
          });
          return;
        }
        const ok = req.write(buf);
        written += buf.length;
        if (ok) res(true);
        else req.once('drain', () => res(true));
      });

    void (async () => {
      if (!(await write(o.head))) return;
      if (typeof o.file === 'number') {
        let left = o.file;
        while (left > 0) {
          const n = Math.min(left, chunkBytes);
          if (!(await write(n === chunkBytes ? filler : filler.subarray(0, n)))) return;
          left -= n;
        }
      } else {
        for (let i = 0; i < o.file.length; i += chunkBytes) {
          if (!(await write(o.file.subarray(i, i + chunkBytes)))) return;
        }
      }
      if (!(await write(tail))) return;
      if (!settled && !req.destroyed) req.end();
    })();
  });
}

// ---------------------------------------------------------------------------------------------
// media made with ffmpeg

export interface MadeMedia {
  /** An AAC audio track in an MP4 container, no video. */
  audioOnly: Buffer;
  /** A single PNG picture. */
  png: Buffer;
  /** A Matroska file whose video track's codec id no decoder knows (patched V_MPEG4/ISO/ASP). */
  unknownCodec: Buffer;
  /** 200 kB of pseudo-random bytes. */
  noise: Buffer;
}

export function makeMedia(dir: string): MadeMedia {
  const { ffmpeg } = findTools();
  const run = (args: string[]) => execFileSync(ffmpeg, ['-v', 'error', '-y', ...args], { stdio: 'pipe' });
  const audio = path.join(dir, 'keep-audio.m4a');
  const png = path.join(dir, 'keep-still.png');
  const mkv = path.join(dir, 'keep-mpeg4.mkv');
  run(['-f', 'lavfi', '-i', 'sine=frequency=440:duration=1', '-c:a', 'aac', audio]);
  run(['-f', 'lavfi', '-i', 'testsrc=size=160x120', '-frames:v', '1', png]);
  run(['-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=10', '-t', '1', '-c:v', 'mpeg4', mkv]);
  const mkvBytes = readFileSync(mkv);
  const id = Buffer.from('V_MPEG4/ISO/ASP');
  const at = mkvBytes.indexOf(id);
  if (at < 0) throw new Error('the MKV has no V_MPEG4/ISO/ASP codec id to patch');
  Buffer.from('V_POSEPOOL/NONE').copy(mkvBytes, at);
  const unknown = path.join(dir, 'keep-unknown-codec.mkv');
  writeFileSync(unknown, mkvBytes);
  return {
    audioOnly: readFileSync(audio),
    png: readFileSync(png),
    unknownCodec: mkvBytes,
    noise: noise(200_000),
  };
}

/** Deterministic pseudo-random bytes (an LCG): unrecognisable to any demuxer, the same on every run. */
export function noise(n: number, seed = 12345): Buffer {
  const out = Buffer.alloc(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** A FormData with `video` = bytes under `name`, plus text fields. */
export function bytesForm(bytes: Buffer, name: string, fields: Record<string, string> = {}): FormData {
  const form = new FormData();
  form.append('video', new Blob([new Uint8Array(bytes)]), name);
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  return form;
}

/** Log lines (pino JSON) of one request. */
export function requestLines(logs: string[], requestId: string): Record<string, unknown>[] {
  return logs
    .filter((l) => l.includes(requestId))
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        return { msg: l };
      }
    });
}
