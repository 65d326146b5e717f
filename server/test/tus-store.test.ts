/** The resumable uploads' store on its own: taking a finished upload (once), putting it back, and the sweep. */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ApiError } from '../errors.js';
import { ResumableStore } from '../upload/tus-store.js';

const HOUR = 3600_000;
const id = (n: number) => n.toString(16).padStart(32, '0');

describe('ResumableStore', () => {
  let root: string;
  let store: ResumableStore;
  const tus = (name: string) => path.join(root, 'tus', name);

  /** An upload as @tus/file-store leaves it: `bytes` of `size` received, created `ageMs` ago. */
  function upload(n: number, bytes: number, size: number | undefined, ageMs = 0): string {
    const key = id(n);
    writeFileSync(tus(key), Buffer.alloc(bytes, 1));
    const info = {
      id: key,
      size,
      offset: 0,
      metadata: { filename: '../evil\u0000.mp4' },
      creation_date: new Date(Date.now() - ageMs).toISOString(),
    };
    writeFileSync(tus(`${key}.json`), JSON.stringify(info));
    return key;
  }

  const code = async (p: Promise<unknown>) =>
    p.then(
      () => 'ok',
      (e: ApiError) => e.code,
    );

  beforeEach(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'e2e-scratch-tus-store-'));
    mkdirSync(path.join(root, 'tus'));
    store = new ResumableStore(root, { expiryMs: HOUR, takenMaxMs: 2 * HOUR, log: pino({ level: 'silent' }) });
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('takes a finished upload once: the file moves out of tus/, a second take is UPLOAD_NOT_FOUND', async () => {
    const key = upload(1, 100, 100);
    const [a, b] = await Promise.allSettled([store.take(key), store.take(key)]);
    const won = [a, b].filter((r) => r.status === 'fulfilled');
    expect(won).toHaveLength(1);
    expect([a, b].find((r) => r.status === 'rejected')?.reason).toMatchObject({ code: 'UPLOAD_NOT_FOUND' });
    const taken = (won[0] as PromiseFulfilledResult<Awaited<ReturnType<ResumableStore['take']>>>).value;
    expect(taken).toMatchObject({ id: key, bytes: 100, clientName: '.._evil_.mp4' });
    expect(existsSync(taken.file)).toBe(true);
    expect(readdirSync(path.join(root, 'tus'))).toEqual([]);
    await taken.remove();
    expect(readdirSync(path.join(root, 'taken'))).toEqual([]);
  });

  it('refuses what is not a finished upload: incomplete, deferred, expired, unknown, malformed', async () => {
    expect(await code(store.take(upload(2, 40, 100)))).toBe('UPLOAD_INCOMPLETE');
    expect(await code(store.take(upload(3, 40, undefined)))).toBe('UPLOAD_INCOMPLETE');
    expect(await code(store.take(upload(4, 100, 100, 2 * HOUR)))).toBe('UPLOAD_NOT_FOUND');
    expect(await code(store.take(id(5)))).toBe('UPLOAD_NOT_FOUND');
    expect(await code(store.take('../tus/x'))).toBe('UPLOAD_NOT_FOUND');
    // None of them was touched.
    expect(readdirSync(path.join(root, 'tus'))).toHaveLength(6);
  });

  it('a refused job puts the upload back, unless its video was refused', async () => {
    const key = upload(6, 100, 100);
    const first = await store.take(key);
    await first.refused(new ApiError('BAD_FIELD'));
    expect(readdirSync(path.join(root, 'tus')).sort()).toEqual([key, `${key}.json`]);
    const second = await store.take(key);
    await second.refused(new ApiError('NOT_A_VIDEO'));
    expect(readdirSync(path.join(root, 'tus'))).toEqual([]);
    expect(readdirSync(path.join(root, 'taken'))).toEqual([]);
  });

  it('sweeps expired uploads (finished or not), bytes without state, and taken uploads no job holds', async () => {
    const now = Date.now();
    const fresh = upload(7, 10, 100);
    upload(8, 10, 100, 2 * HOUR);
    upload(9, 100, 100, 2 * HOUR);
    writeFileSync(tus(id(10)), 'orphan');
    utimesSync(tus(id(10)), new Date(now - 2 * HOUR), new Date(now - 2 * HOUR));
    writeFileSync(tus(id(11)), 'young orphan: perhaps a creation between its two writes');
    mkdirSync(path.join(root, 'taken', `${now - 3 * HOUR}-${id(12)}`), { recursive: true });
    mkdirSync(path.join(root, 'taken', `${now - 60_000}-${id(13)}`), { recursive: true });

    expect(await store.sweep(now)).toEqual({ expired: 2, taken: 1 });
    expect(readdirSync(path.join(root, 'tus')).sort()).toEqual([fresh, `${fresh}.json`, id(11)].sort());
    expect(readdirSync(path.join(root, 'taken'))).toEqual([`${now - 60_000}-${id(13)}`]);
  });

  it('a store that never saw an upload sweeps nothing and makes no folder', async () => {
    const empty = new ResumableStore(path.join(root, 'none'), { expiryMs: HOUR, takenMaxMs: HOUR, log: pino({ level: 'silent' }) });
    expect(await empty.sweep()).toEqual({ expired: 0, taken: 0 });
    expect(existsSync(path.join(root, 'none'))).toBe(false);
  });
});
