/**
 * Test helper: tar archives byte by byte (ustar headers), including the entries a hostile archive could hold
 * (names with "..", absolute names, links pointing outside) that the system tar refuses to create.
 */
export interface TarEntry {
  name: string;
  /** '0' file (default), '2' symlink, '1' hard link, '5' folder, 'x' pax header, 'L' GNU long name. */
  type?: string;
  data?: Buffer | string;
  linkname?: string;
  /** ustar prefix field (name = prefix/name). */
  prefix?: string;
}

function field(h: Buffer, offset: number, len: number, value: string): void {
  h.write(value, offset, Math.min(len, Buffer.byteLength(value)), 'utf8');
}

function octal(h: Buffer, offset: number, len: number, n: number): void {
  field(h, offset, len, `${n.toString(8).padStart(len - 1, '0')}\0`);
}

export function tarHeader(entry: TarEntry, size: number, opts: { badChecksum?: boolean } = {}): Buffer {
  const h = Buffer.alloc(512);
  field(h, 0, 100, entry.name);
  octal(h, 100, 8, 0o644);
  octal(h, 108, 8, 0);
  octal(h, 116, 8, 0);
  octal(h, 124, 12, size);
  octal(h, 136, 12, 1_700_000_000);
  h.fill(0x20, 148, 156);
  h.write(entry.type ?? '0', 156, 1, 'latin1');
  if (entry.linkname) field(h, 157, 100, entry.linkname);
  h.write('ustar\0', 257, 6, 'latin1');
  h.write('00', 263, 2, 'latin1');
  if (entry.prefix) field(h, 345, 155, entry.prefix);
  let sum = 0;
  for (const b of h) sum += b;
  octal(h, 148, 7, opts.badChecksum ? sum + 1 : sum);
  h[155] = 0x20;
  return h;
}

export function tarEntryBytes(entry: TarEntry, opts: { badChecksum?: boolean } = {}): Buffer {
  const data = typeof entry.data === 'string' ? Buffer.from(entry.data) : (entry.data ?? Buffer.alloc(0));
  const pad = Buffer.alloc((512 - (data.length % 512)) % 512);
  return Buffer.concat([tarHeader(entry, data.length, opts), data, pad]);
}

/** A pax extended header record set for the next entry. */
export function paxData(records: Record<string, string>): string {
  return Object.entries(records)
    .map(([k, v]) => {
      const body = ` ${k}=${v}\n`;
      let len = body.length + 1;
      while (String(len).length + body.length !== len) len = String(len).length + body.length;
      return `${len}${body}`;
    })
    .join('');
}

/** The whole archive: entries, then the two zero blocks (unless `end: false`). */
export function tarArchive(entries: TarEntry[], opts: { end?: boolean } = {}): Buffer {
  return Buffer.concat([...entries.map((e) => tarEntryBytes(e)), ...(opts.end === false ? [] : [Buffer.alloc(1024)])]);
}
