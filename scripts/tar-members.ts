/**
 * A streaming tar reader that writes only the wanted regular files, each to a path the caller chose
 * (pipe gunzip's output into it). Nothing else in the archive is written: no directories, links or devices.
 *
 * It reads ustar, GNU (long names and links, base-256 sizes) and pax (path, linkpath, size) headers and
 * verifies every header checksum. The archive is refused (TarError) when any member name is absolute or
 * climbs out with "..", when a link points outside the archive's root, when a wanted member is not a
 * regular file or occurs twice, when a header is corrupt, or when the stream ends before the end-of-archive
 * blocks. `finish()` then says which wanted members were not found.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';

const BLOCK = 512;

export class TarError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TarError';
  }
}

/** "./a/b" -> "a/b"; throws TarError for absolute names and names that climb out of the root with "..". */
export function safeMemberName(raw: string): string {
  const name = raw.replace(/\\/g, '/');
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) throw new TarError(`unsafe member name ${JSON.stringify(raw)} (absolute path)`);
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new TarError(`unsafe member name ${JSON.stringify(raw)} (climbs out with "..")`);
  return parts.join('/');
}

/** Throws TarError when a link's target lies outside the archive root (absolute, or "..", past the root). */
function checkLinkTarget(member: string, target: string, hard: boolean): void {
  const t = target.replace(/\\/g, '/');
  if (t.startsWith('/') || /^[A-Za-z]:/.test(t)) throw new TarError(`link ${member} -> ${target} points outside the archive (absolute)`);
  // symlinks resolve from the link's folder, hard links from the archive root
  const resolved = path.posix.normalize(path.posix.join(hard ? '' : path.posix.dirname(member), t));
  if (resolved === '..' || resolved.startsWith('../')) throw new TarError(`link ${member} -> ${target} points outside the archive`);
}

function cString(buf: Buffer, start: number, len: number): string {
  const field = buf.subarray(start, start + len);
  const nul = field.indexOf(0);
  return field.subarray(0, nul < 0 ? len : nul).toString('utf8');
}

/** An octal number field, or GNU base-256 (high bit of the first byte set). */
function numberField(buf: Buffer, start: number, len: number, what: string): number {
  const field = buf.subarray(start, start + len);
  if (field[0] & 0x80) {
    let v = field[0] & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + field[i];
    return v;
  }
  const text = field.toString('latin1').replace(/\0.*$/s, '').trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new TarError(`corrupt tar header: ${what} field ${JSON.stringify(text)}`);
  return parseInt(text, 8);
}

function headerChecksumOk(h: Buffer): boolean {
  const recorded = numberField(h, 148, 8, 'checksum');
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : h[i];
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return recorded === unsigned || recorded === signed;
}

/** pax records: "LEN key=value\n"... */
function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    if (space < 0) break;
    const len = parseInt(data.subarray(at, space).toString('latin1'), 10);
    if (!Number.isFinite(len) || len <= 0 || at + len > data.length) throw new TarError('corrupt pax extended header');
    const record = data.subarray(space + 1, at + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    at += len;
  }
  return out;
}

type State =
  | { at: 'header' }
  | { at: 'data'; remaining: number; padding: number; fd?: number; collect?: Buffer[]; kind?: 'L' | 'K' | 'x' }
  | { at: 'padding'; remaining: number }
  | { at: 'end' };

export interface TarSummary {
  /** Every member name (normalised), in archive order. */
  names: string[];
  /** Wanted member -> bytes written. */
  written: Map<string, number>;
}

export class TarMemberWriter extends Writable {
  private pending: Buffer = Buffer.alloc(0);
  private state: State = { at: 'header' };
  private zeroBlocks = 0;
  private longName?: string;
  private longLink?: string;
  private pax: Record<string, string> = {};
  readonly summary: TarSummary = { names: [], written: new Map() };

  /** `wanted`: member name (as in the archive, without "./") -> the file to write it to (created, must not exist). */
  constructor(private readonly wanted: Map<string, string>) {
    super();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    try {
      this.consume(chunk);
      done();
    } catch (err) {
      this.closeOutput();
      done(err as Error);
    }
  }

  override _final(done: (err?: Error | null) => void): void {
    this.closeOutput();
    if (this.state.at !== 'end') {
      done(
        new TarError(
          this.state.at === 'header' && this.pending.length === 0
            ? 'the tar stream ends without its end-of-archive blocks (truncated archive)'
            : 'the tar stream ends inside a member (truncated archive)',
        ),
      );
      return;
    }
    done();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this.closeOutput();
    done(err);
  }

  /** The wanted members that did not occur (call after the stream finished). */
  missing(): string[] {
    return [...this.wanted.keys()].filter((name) => !this.summary.written.has(name));
  }

  private closeOutput(): void {
    if (this.state.at === 'data' && this.state.fd !== undefined) {
      closeSync(this.state.fd);
      this.state.fd = undefined;
    }
  }

  private consume(chunk: Buffer): void {
    let buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = Buffer.alloc(0);
    while (buf.length > 0) {
      const s = this.state;
      if (s.at === 'end') return; // whatever follows the end-of-archive blocks (record padding) is ignored
      if (s.at === 'header') {
        if (buf.length < BLOCK) {
          this.pending = Buffer.from(buf);
          return;
        }
        this.header(buf.subarray(0, BLOCK));
        buf = buf.subarray(BLOCK);
      } else if (s.at === 'data') {
        const n = Math.min(s.remaining, buf.length);
        const piece = buf.subarray(0, n);
        if (s.fd !== undefined) {
          let off = 0;
          while (off < piece.length) off += writeSync(s.fd, piece, off, piece.length - off);
        } else if (s.collect) s.collect.push(Buffer.from(piece));
        s.remaining -= n;
        buf = buf.subarray(n);
        if (s.remaining === 0) this.memberDone(s);
      } else {
        const n = Math.min(s.remaining, buf.length);
        s.remaining -= n;
        buf = buf.subarray(n);
        if (s.remaining === 0) this.state = { at: 'header' };
      }
    }
  }

  private memberDone(s: Extract<State, { at: 'data' }>): void {
    if (s.fd !== undefined) {
      closeSync(s.fd);
      s.fd = undefined;
    }
    if (s.kind && s.collect) {
      const data = Buffer.concat(s.collect);
      if (s.kind === 'L') this.longName = cString(data, 0, data.length);
      else if (s.kind === 'K') this.longLink = cString(data, 0, data.length);
      else this.pax = { ...this.pax, ...parsePax(data) };
    }
    this.state = s.padding ? { at: 'padding', remaining: s.padding } : { at: 'header' };
  }

  private header(h: Buffer): void {
    if (h.every((b) => b === 0)) {
      this.zeroBlocks += 1;
      if (this.zeroBlocks === 2) this.state = { at: 'end' };
      return;
    }
    if (this.zeroBlocks) throw new TarError('corrupt tar stream: a lone zero block inside the archive');
    if (!headerChecksumOk(h)) throw new TarError('corrupt tar header (checksum mismatch)');
    const type = String.fromCharCode(h[156] || 0x30);
    let size = numberField(h, 124, 12, 'size');
    const ustar = h.subarray(257, 262).toString('latin1') === 'ustar';
    const padding = (n: number) => (BLOCK - (n % BLOCK)) % BLOCK;

    // headers that describe the next member
    if (type === 'L' || type === 'K' || type === 'x' || type === 'g') {
      this.state = {
        at: 'data',
        remaining: size,
        padding: padding(size),
        collect: type === 'g' ? undefined : [],
        kind: type === 'g' ? undefined : type,
      };
      if (size === 0) this.memberDone(this.state);
      return;
    }

    const prefix = ustar ? cString(h, 345, 155) : '';
    const rawName = this.pax.path ?? this.longName ?? (prefix ? `${prefix}/${cString(h, 0, 100)}` : cString(h, 0, 100));
    const rawLink = this.pax.linkpath ?? this.longLink ?? cString(h, 157, 100);
    if (this.pax.size !== undefined) size = Number(this.pax.size);
    if (!Number.isSafeInteger(size) || size < 0) throw new TarError(`corrupt tar header: size ${size}`);
    this.pax = {};
    this.longName = this.longLink = undefined;

    const name = safeMemberName(rawName);
    if (type === '1' || type === '2') checkLinkTarget(name, rawLink, type === '1');
    this.summary.names.push(name);

    let fd: number | undefined;
    const out = this.wanted.get(name);
    if (out !== undefined) {
      const what = { '1': 'a hard link', '2': 'a symbolic link', '3': 'a device', '4': 'a device', '5': 'a folder', '6': 'a FIFO' }[type];
      if (!(type === '0' || type === '7'))
        throw new TarError(`member ${name} is ${what ?? `of tar type ${JSON.stringify(type)}`}, not a regular file`);
      if (this.summary.written.has(name)) throw new TarError(`member ${name} occurs twice in the archive`);
      fd = openSync(out, 'wx'); // exclusive create: never follows or overwrites anything already there
      this.summary.written.set(name, size);
    }
    // directories, links and devices carry no data to skip (their size field is ignored, as tar does)
    const dataSize = type === '0' || type === '7' || type === 'S' ? size : 0;
    this.state = { at: 'data', remaining: dataSize, padding: padding(dataSize), fd };
    if (dataSize === 0) this.memberDone(this.state);
  }
}
