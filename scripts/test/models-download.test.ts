import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MODEL_NAMES, PROTOCOL } from '../../protocol/index.js';
import { REPO_ROOT } from '../../server/config.js';
import { DownloadError, downloadFile, probeHost, removeInFlight } from '../download-file.js';
import {
  type DownloadFile,
  type DownloadPlainFile,
  type DownloadTarball,
  MODEL_SOURCES,
  type ModelSource,
  outputsOf,
} from '../model-sources.js';
import { downloadModel, main, missingFiles } from '../models-download.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const plain = (f: Omit<DownloadPlainFile, 'type' | 'integrity'> & { integrity?: string }): DownloadPlainFile => ({
  type: 'file',
  integrity: 'test values',
  ...f,
});

let server: http.Server;
let base: string;
let dir: string;
const payload = Buffer.from('weights '.repeat(5000));
let tarball: Buffer;

beforeAll(async () => {
  // a tarball holding the layout a model needs
  const src = mkdtempSync(path.join(os.tmpdir(), 'posepool-tarsrc-'));
  mkdirSync(path.join(src, 'data'));
  writeFileSync(path.join(src, 'data', 'a.pkl'), 'a');
  writeFileSync(path.join(src, 'ckpt.pt'), 'b');
  const out = path.join(src, '..', `${path.basename(src)}.tar.gz`);
  expect(spawnSync('tar', ['-czf', out, '-C', src, 'data', 'ckpt.pt']).status).toBe(0);
  tarball = readFileSync(out);
  rmSync(src, { recursive: true });
  rmSync(out);

  server = http.createServer((req, res) => {
    if (req.method === 'HEAD') res.writeHead(req.url === '/nope' ? 404 : 200).end();
    else if (req.url === '/w.bin') res.end(payload);
    else if (req.url === '/m.tar.gz') res.end(tarball);
    else if (req.url === '/m-encoded.tar.gz')
      res.writeHead(200, { 'content-encoding': 'gzip' }).end(tarball); // Apache AddEncoding
    else if (req.url === '/stall')
      res.writeHead(200, { 'content-length': '100' }).write('x'); // never ends
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
});
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'posepool-models-'));
  return () => rmSync(dir, { recursive: true, force: true });
});

describe('downloadFile', () => {
  it('downloads, verifies sha256 and size, and skips an intact file the second time', async () => {
    const file = plain({ url: `${base}/w.bin`, dest: 'sub/w.bin', sha256: sha(payload), size: payload.length });
    const logs: string[] = [];
    const got = await downloadFile(file, { modelsDir: dir, log: (l) => logs.push(l) });
    expect(readFileSync(got).equals(payload)).toBe(true);
    expect(logs.join('\n')).toContain('(verified)');
    const again: string[] = [];
    await downloadFile({ ...file, url: `${base}/missing` }, { modelsDir: dir, log: (l) => again.push(l) });
    expect(again).toEqual(['sub/w.bin: already there and intact']);
  });

  it('a checksum mismatch leaves nothing behind', async () => {
    const file = plain({ url: `${base}/w.bin`, dest: 'w.bin', sha256: '0'.repeat(64), integrity: 'sha256 from the test' });
    const err = await downloadFile(file, { modelsDir: dir }).catch((e) => e);
    expect(err).toMatchObject({ code: 'CHECKSUM_MISMATCH' });
    expect(err.message).toContain('(sha256 from the test)'); // says where the expected value came from
    expect(existsSync(path.join(dir, 'w.bin'))).toBe(false);
    expect(existsSync(path.join(dir, 'w.bin.part'))).toBe(false);
  });

  it('a size mismatch and an HTTP error are typed', async () => {
    await expect(downloadFile(plain({ url: `${base}/w.bin`, dest: 'w.bin', size: 3 }), { modelsDir: dir })).rejects.toMatchObject({
      code: 'SIZE_MISMATCH',
    });
    await expect(downloadFile(plain({ url: `${base}/nope`, dest: 'n.bin', size: 3 }), { modelsDir: dir })).rejects.toMatchObject({
      code: 'HTTP_ERROR',
    });
    expect(readdirSync(dir)).toEqual([]);
  });

  it('a stalled download is aborted', async () => {
    await expect(
      downloadFile(plain({ url: `${base}/stall`, dest: 's.bin', size: 100 }), { modelsDir: dir, stallTimeoutMs: 300 }),
    ).rejects.toMatchObject({
      code: 'DOWNLOAD_STALLED',
    });
    expect(existsSync(path.join(dir, 's.bin.part'))).toBe(false);
  });

  it('removeInFlight (the SIGINT/SIGTERM handler) removes the temporary file of a download under way', async () => {
    const pending = downloadFile(plain({ url: `${base}/stall`, dest: 's.bin', size: 100 }), { modelsDir: dir, stallTimeoutMs: 1500 }).catch(
      (e) => e,
    );
    const part = path.join(dir, 's.bin.part');
    for (let i = 0; i < 100 && !existsSync(part); i++) await new Promise((r) => setTimeout(r, 10));
    expect(existsSync(part)).toBe(true);
    removeInFlight();
    expect(existsSync(part)).toBe(false);
    expect(await pending).toMatchObject({ code: 'DOWNLOAD_STALLED' });
  });

  it('without network it fails within seconds', async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    closed.close();
    const t0 = Date.now();
    // connection refused, and a name that does not resolve (as every host does on a machine without DNS)
    for (const url of [`http://127.0.0.1:${port}/x`, 'https://posepool-no-such-host.invalid/x']) {
      const err = await probeHost(url, 1500).catch((e) => e);
      expect(err).toBeInstanceOf(DownloadError);
      expect(err.code).toBe('NETWORK_UNREACHABLE');
    }
    expect(Date.now() - t0).toBeLessThan(8000);
  });

  it('a server that accepts the connection but never answers counts as unreachable after the probe timeout', async () => {
    const silent = net.createServer(() => {}); // accepts, says nothing
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const t0 = Date.now();
    const err = await probeHost(`http://127.0.0.1:${(silent.address() as AddressInfo).port}/x`, 500).catch((e) => e);
    silent.close();
    expect(err).toMatchObject({ code: 'NETWORK_UNREACHABLE' });
    expect(err.message).toContain('no answer within 0.5 s');
    expect(Date.now() - t0).toBeLessThan(3000);
  });
});

describe('downloadModel', () => {
  const tarModel: ModelSource = {
    kind: 'download',
    license: 'test',
    manual: 'by hand',
    needs: [{ anyOf: ['m/ckpt.pt'] }, { anyOf: ['m/data/a.pkl'] }],
    files: [
      {
        type: 'tar.gz',
        url: '',
        integrity: 'test',
        members: [
          { path: 'ckpt.pt', dest: 'm/ckpt.pt' },
          { path: 'data/a.pkl', dest: 'm/data/a.pkl' },
        ],
      },
    ],
  };
  const withUrl = (url: string, extra: object = {}) => ({
    fake: { ...tarModel, files: [{ ...(tarModel as { files: DownloadFile[] }).files[0], url, ...extra }] } as ModelSource,
  });

  it('takes the wanted members out of a tarball into their places, keeps nothing else, and is idempotent', async () => {
    const logs: string[] = [];
    expect(
      await downloadModel('fake', {
        modelsDir: dir,
        sources: withUrl(`${base}/m.tar.gz`, { sha256: sha(tarball) }),
        log: (l) => logs.push(l),
      }),
    ).toBe('ready');
    expect(readFileSync(path.join(dir, 'm', 'data', 'a.pkl'), 'utf8')).toBe('a');
    expect(readFileSync(path.join(dir, 'm', 'ckpt.pt'), 'utf8')).toBe('b');
    expect(readdirSync(dir)).toEqual(['m']); // no archive, no staging folder
    expect(readdirSync(path.join(dir, 'm')).sort()).toEqual(['ckpt.pt', 'data']);
    // one member lost, and staging folders left by a killed run (pid gone) and by a live process (this one)
    rmSync(path.join(dir, 'm', 'ckpt.pt'));
    mkdirSync(path.join(dir, '.download-999999999-x'));
    writeFileSync(path.join(dir, '.download-999999999-x', 'member-0'), 'left by a killed run');
    mkdirSync(path.join(dir, `.download-${process.pid}-mine`)); // a live process's: kept
    expect(await downloadModel('fake', { modelsDir: dir, sources: withUrl(`${base}/m.tar.gz`), log: (l) => logs.push(l) })).toBe('ready');
    expect(logs.join('\n')).toContain('removed .download-999999999-x (left by an interrupted run)');
    expect(readdirSync(dir).sort()).toEqual([`.download-${process.pid}-mine`, 'm']);
    expect(readFileSync(path.join(dir, 'm', 'ckpt.pt'), 'utf8')).toBe('b');
    rmSync(path.join(dir, `.download-${process.pid}-mine`), { recursive: true });
    // idempotent: nothing fetched again (the URL is gone now)
    expect(await downloadModel('fake', { modelsDir: dir, sources: withUrl(`${base}/gone`), log: () => {} })).toBe('ready');
  });

  it('a .tar.gz served with Content-Encoding gzip (fetch removes that layer) is unpacked all the same', async () => {
    const logs: string[] = [];
    expect(await downloadModel('fake', { modelsDir: dir, sources: withUrl(`${base}/m-encoded.tar.gz`), log: (l) => logs.push(l) })).toBe(
      'ready',
    );
    expect(readFileSync(path.join(dir, 'm', 'ckpt.pt'), 'utf8')).toBe('b');
    expect(logs.join('\n')).toContain('served with Content-Encoding gzip');
  });

  it('a tarball whose checksum differs leaves nothing behind', async () => {
    const err = await downloadModel('fake', {
      modelsDir: dir,
      sources: withUrl(`${base}/m.tar.gz`, { sha256: '1'.repeat(64) }),
      log: () => {},
    }).catch((e) => e);
    expect(err).toMatchObject({ code: 'CHECKSUM_MISMATCH' });
    expect(readdirSync(dir)).toEqual([]);
  });

  it('falls back to a mirror when the first URL answers an HTTP error', async () => {
    const logs: string[] = [];
    const sources = withUrl(`${base}/nope`, { mirrors: [`${base}/m.tar.gz`] });
    expect(await downloadModel('fake', { modelsDir: dir, sources, log: (l) => logs.push(l) })).toBe('ready');
    expect(logs.join('\n')).toMatch(/HTTP 404.*trying .*\/m\.tar\.gz/);
  });

  it('MoveNet: ships in node_modules, nothing to download', async () => {
    const logs: string[] = [];
    expect(await downloadModel('movenet-thunder', { modelsDir: dir, log: (l) => logs.push(l) })).toBe('ready');
    expect(logs.join()).toContain('nothing to download');
  });

  it('a model without a recorded source says so and what to put where, without touching the network', async () => {
    const sources: Record<string, ModelSource> = {
      x: { kind: 'unrecorded', note: 'no source yet', needs: [{ anyOf: ['x.pth', 'x+.pth'] }] },
    };
    const logs: string[] = [];
    expect(await downloadModel('x', { modelsDir: dir, sources, log: (l) => logs.push(l) })).toBe('failed');
    expect(logs.join('\n')).toContain(`put x.pth or x+.pth into ${dir}`);
    writeFileSync(path.join(dir, 'x+.pth'), 'x'); // either file satisfies the need
    expect(missingFiles(sources.x, dir)).toEqual([]);
  });

  it('unknown names get the list of valid ones (exit 2)', async () => {
    const errors: string[] = [];
    expect(await main(['no-such-model'], {}, { error: (m) => errors.push(m) })).toBe(2);
    expect(errors.join()).toContain('unknown model no-such-model');
    for (const name of MODEL_NAMES) expect(errors.join()).toContain(name);
  });

  it('--help lists every model with how its download is checked', async () => {
    const out: string[] = [];
    expect(await main(['--help'], {}, { log: (m) => out.push(m) })).toBe(0);
    const text = out.join('\n');
    expect(text).toMatch(/vitpose-b +vitpose-b\.pth \(checked: sha256, size, key manifest\)/);
    expect(text).toMatch(/vitpose-s +vitpose\+_small\.pth \(checked: key manifest\)/);
    expect(text).toMatch(/hmr2 +hmr2_data\.tar\.gz -> 2 files \(checked: key manifest\); plus a licensed file you supply/);
  });
});

describe('the model-sources table', () => {
  it('has an entry for every model of protocol.json and nothing else', () => {
    expect(Object.keys(MODEL_SOURCES).sort()).toEqual([...MODEL_NAMES].sort());
  });

  it('every model that needs files is downloadable; every download is checked by size/sha256 or a committed key manifest', () => {
    for (const [name, source] of Object.entries(MODEL_SOURCES)) {
      expect(source.kind === 'download', name).toBe(PROTOCOL.models[name].needsDownload);
      if (source.kind !== 'download') continue;
      for (const f of source.files) {
        for (const url of [f.url, ...(f.mirrors ?? [])]) expect(url, name).toMatch(/^https:\/\//);
        expect(f.integrity.length, name).toBeGreaterThan(20);
        const checks = f.type === 'file' ? [f.check] : f.members.map((m) => m.check);
        const manifests = checks.flatMap((c) => (c?.kind === 'checkpoint' ? [c.manifest] : []));
        expect(manifests.length > 0 || (f.size !== undefined && !!f.sha256), `${name}: unchecked download`).toBe(true);
        for (const m of manifests) expect(existsSync(path.join(REPO_ROOT, m)), m).toBe(true);
        // without a recorded size/checksum the label must say so
        if (!f.sha256 && f.size === undefined) expect(f.integrity).toMatch(/no size or checksum is published/);
        // what it places satisfies the needs that are not user-supplied
        for (const need of source.needs.filter((n) => !n.userSupplied)) {
          expect(
            need.anyOf.some((rel) => outputsOf(f).includes(rel)),
            `${name}: ${need.anyOf[0]}`,
          ).toBe(true);
        }
      }
    }
  });

  it('ViTPose-B: the re-hosted classic checkpoint with its pinned size and sha256, labelled as third-party values', () => {
    const src = MODEL_SOURCES['vitpose-b'];
    expect(src.kind).toBe('download');
    const file = (src as { files: DownloadFile[] }).files[0];
    expect(file).toMatchObject({
      type: 'file',
      url: 'https://huggingface.co/nielsr/vitpose-original-checkpoints/resolve/main/vitpose-b.pth',
      dest: 'vitpose-b.pth',
      size: 360_038_314,
      sha256: '2e849e1f1dbb5b87191eda7171f1b16468d5d082a7380e93e94b7ce76a061679',
      check: { kind: 'checkpoint', format: 'vitpose', manifest: 'pose-service/manifests/vitpose-b.json' },
    });
    expect(file.integrity).toContain('as published by third parties');
  });

  it('HMR2: the official archive (utexas, berkeley as mirror); checkpoint and J19 land where the backend looks; SMPL is user-supplied', () => {
    const src = MODEL_SOURCES.hmr2 as Extract<ModelSource, { kind: 'download' }>;
    const tar = src.files[0] as DownloadTarball;
    expect(tar.url).toBe('https://www.cs.utexas.edu/~pavlakos/4dhumans/hmr2_data.tar.gz');
    expect(tar.mirrors).toEqual(['https://people.eecs.berkeley.edu/~jathushan/projects/4dhumans/hmr2_data.tar.gz']);
    const config = readFileSync(path.join(REPO_ROOT, 'pose-service/posepool_worker/backends/hmr2/config.py'), 'utf8');
    const pyConst = (name: string) => config.match(new RegExp(`^${name} = "([^"]+)"`, 'm'))?.[1];
    expect(tar.members.map((m) => m.dest)).toEqual([pyConst('CHECKPOINT'), pyConst('J19_REGRESSOR')]);
    expect(tar.members.map((m) => `hmr2/${m.path}`)).toEqual(tar.members.map((m) => m.dest));
    const smpl = src.needs.find((n) => n.userSupplied)!;
    expect(smpl.anyOf[0]).toBe('SMPL_NEUTRAL.pkl');
    expect(smpl.userSupplied).toContain('https://smpl.is.tue.mpg.de');
  });
});
