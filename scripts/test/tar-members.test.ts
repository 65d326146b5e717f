import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, gzipSync } from 'node:zlib';
import { beforeEach, describe, expect, it } from 'vitest';
import { safeMemberName, TarError, TarMemberWriter } from '../tar-members.js';
import { paxData, tarArchive, tarEntryBytes } from './support/tar-builder.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'posepool-tar-'));
  return () => rmSync(dir, { recursive: true, force: true });
});

/** Feeds `bytes` (in small chunks, to cross block boundaries) into a writer wanting `wanted` (name -> file in dir). */
async function extract(bytes: Buffer, wanted: Record<string, string>, gzip = false) {
  const writer = new TarMemberWriter(new Map(Object.entries(wanted).map(([k, v]) => [k, path.join(dir, v)])));
  const chunks: Buffer[] = [];
  const input = gzip ? gzipSync(bytes) : bytes;
  for (let i = 0; i < input.length; i += 777) chunks.push(input.subarray(i, i + 777));
  if (gzip) await pipeline(Readable.from(chunks), createGunzip(), writer);
  else await pipeline(Readable.from(chunks), writer);
  return writer;
}

describe('TarMemberWriter', () => {
  it('writes only the wanted regular files, whatever their header style (ustar prefix, "./", GNU long name, pax path)', async () => {
    const long = `deep/${'x'.repeat(120)}/c.bin`;
    const archive = tarArchive([
      { name: 'data/', type: '5' },
      { name: './data/a.pkl', data: 'alpha' },
      { name: 'skipped.bin', data: Buffer.alloc(3000, 7) },
      { name: 'b.ckpt', prefix: 'logs/train', data: Buffer.alloc(1500, 1) },
      { name: '././@LongLink', type: 'L', data: `${long}\0` },
      { name: long.slice(0, 99), data: 'gnu long' },
      { name: 'PaxHeaders/x', type: 'x', data: paxData({ path: 'pax/named.bin' }) },
      { name: 'short', data: 'pax body' },
      { name: 'inside-link', type: '2', linkname: 'data/a.pkl' },
    ]);
    const w = await extract(archive, { 'data/a.pkl': 'a', 'logs/train/b.ckpt': 'b', [long]: 'c', 'pax/named.bin': 'd' });
    expect(readFileSync(path.join(dir, 'a'), 'utf8')).toBe('alpha');
    expect(readFileSync(path.join(dir, 'b')).equals(Buffer.alloc(1500, 1))).toBe(true);
    expect(readFileSync(path.join(dir, 'c'), 'utf8')).toBe('gnu long');
    expect(readFileSync(path.join(dir, 'd'), 'utf8')).toBe('pax body');
    expect(w.missing()).toEqual([]);
    expect(readdirSync(dir).sort()).toEqual(['a', 'b', 'c', 'd']); // nothing else written
    expect(w.summary.names).toEqual(['data', 'data/a.pkl', 'skipped.bin', 'logs/train/b.ckpt', long, 'pax/named.bin', 'inside-link']);
  });

  it('reads what GNU tar writes, through gunzip, and reports wanted members that are absent', async () => {
    const src = path.join(dir, 'src');
    mkdirSync(path.join(src, 'data'), { recursive: true });
    writeFileSync(path.join(src, 'data', 'SMPL_to_J19.pkl'), Buffer.alloc(20_000, 3));
    symlinkSync('SMPL_to_J19.pkl', path.join(src, 'data', 'alias.pkl'));
    const tgz = path.join(dir, 'a.tar.gz');
    expect(spawnSync('tar', ['-czf', tgz, '-C', src, '.']).status).toBe(0);
    const writer = new TarMemberWriter(
      new Map([
        ['data/SMPL_to_J19.pkl', path.join(dir, 'j19')],
        ['data/missing.pkl', path.join(dir, 'm')],
      ]),
    );
    await pipeline(Readable.from([readFileSync(tgz)]), createGunzip(), writer);
    expect(readFileSync(path.join(dir, 'j19')).length).toBe(20_000);
    expect(writer.missing()).toEqual(['data/missing.pkl']);
    expect(existsSync(path.join(dir, 'm'))).toBe(false);
  });

  it.each([
    ['a name climbing out with ".."', [{ name: '../../etc/evil', data: 'x' }], /unsafe member name "..\/..\/etc\/evil"/],
    ['a name climbing out through a folder', [{ name: 'data/../../evil', data: 'x' }], /climbs out/],
    ['an absolute name', [{ name: '/tmp/evil', data: 'x' }], /absolute path/],
    [
      'a pax path climbing out',
      [
        { name: 'PaxHeaders/x', type: 'x', data: paxData({ path: '../evil' }) },
        { name: 'ok', data: 'x' },
      ],
      /unsafe member name/,
    ],
    ['a symlink pointing outside', [{ name: 'data/l', type: '2', linkname: '../../outside' }], /points outside the archive/],
    ['an absolute symlink', [{ name: 'l', type: '2', linkname: '/etc/passwd' }], /points outside the archive \(absolute\)/],
    ['a hard link outside', [{ name: 'h', type: '1', linkname: '../x' }], /points outside/],
  ])('refuses an archive holding %s, even when that member is not wanted', async (_what, entries, message) => {
    const err = await extract(tarArchive(entries), { wanted: 'w' }).catch((e) => e);
    expect(err).toBeInstanceOf(TarError);
    expect(err.message).toMatch(message);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('refuses a wanted member that is a link or a folder, or occurs twice', async () => {
    await expect(extract(tarArchive([{ name: 'a.pkl', type: '2', linkname: 'b' }]), { 'a.pkl': 'a' })).rejects.toThrow(
      /a\.pkl is a symbolic link, not a regular file/,
    );
    await expect(extract(tarArchive([{ name: 'a.pkl', type: '5' }]), { 'a.pkl': 'a2' })).rejects.toThrow(/is a folder/);
    await expect(
      extract(
        tarArchive([
          { name: 'a.pkl', data: '1' },
          { name: './a.pkl', data: '2' },
        ]),
        { 'a.pkl': 'a3' },
      ),
    ).rejects.toThrow(/occurs twice/);
  });

  it('refuses corrupt and truncated archives', async () => {
    await expect(extract(tarEntryBytes({ name: 'a', data: 'x' }, { badChecksum: true }), {})).rejects.toThrow(/checksum mismatch/);
    await expect(extract(tarArchive([{ name: 'a', data: 'x' }], { end: false }), {})).rejects.toThrow(/without its end-of-archive blocks/);
    const cut = tarArchive([{ name: 'a', data: Buffer.alloc(2000) }]).subarray(0, 1200);
    await expect(extract(cut, { a: 'a' })).rejects.toThrow(/ends inside a member/);
    // a truncated gzip stream: zlib's own error
    const gz = gzipSync(tarArchive([{ name: 'a', data: Buffer.alloc(5000, 9) }]));
    const writer = new TarMemberWriter(new Map());
    const err = await pipeline(Readable.from([gz.subarray(0, gz.length - 10)]), createGunzip(), writer).catch((e) => e);
    expect(err.code).toMatch(/^Z_/);
  });

  it('safeMemberName strips "./" and refuses escapes', () => {
    expect(safeMemberName('./a//b/./c')).toBe('a/b/c');
    expect(() => safeMemberName('a/../../b')).toThrow(TarError);
    expect(() => safeMemberName('C:\\x')).toThrow(/absolute/);
  });
});
