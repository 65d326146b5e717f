import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MODEL_NAMES } from '../../protocol/index.js';
import { DownloadError, downloadFile, probeHost } from '../download-file.js';
import { MODEL_SOURCES, type ModelSource } from '../model-sources.js';
import { downloadModel, main, missingFiles } from '../models-download.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

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
    else if (req.url === '/stall') res.writeHead(200, { 'content-length': '100' }).write('x'); // never ends
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
    const file = { url: `${base}/w.bin`, dest: 'sub/w.bin', sha256: sha(payload), size: payload.length };
    const logs: string[] = [];
    const got = await downloadFile(file, { modelsDir: dir, log: (l) => logs.push(l) });
    expect(readFileSync(got).equals(payload)).toBe(true);
    expect(logs.join('\n')).toContain('(verified)');
    const again: string[] = [];
    await downloadFile({ ...file, url: `${base}/missing` }, { modelsDir: dir, log: (l) => again.push(l) });
    expect(again).toEqual(['sub/w.bin: already there and intact']);
  });

  it('a checksum mismatch leaves nothing behind', async () => {
    const file = { url: `${base}/w.bin`, dest: 'w.bin', sha256: '0'.repeat(64) };
    await expect(downloadFile(file, { modelsDir: dir })).rejects.toMatchObject({ code: 'CHECKSUM_MISMATCH' });
    expect(existsSync(path.join(dir, 'w.bin'))).toBe(false);
    expect(existsSync(path.join(dir, 'w.bin.part'))).toBe(false);
  });

  it('a size mismatch and an HTTP error are typed', async () => {
    await expect(downloadFile({ url: `${base}/w.bin`, dest: 'w.bin', size: 3 }, { modelsDir: dir })).rejects.toMatchObject({ code: 'SIZE_MISMATCH' });
    await expect(downloadFile({ url: `${base}/nope`, dest: 'n.bin', size: 3 }, { modelsDir: dir })).rejects.toMatchObject({ code: 'HTTP_ERROR' });
  });

  it('a stalled download is aborted', async () => {
    await expect(downloadFile({ url: `${base}/stall`, dest: 's.bin', size: 100 }, { modelsDir: dir, stallTimeoutMs: 300 })).rejects.toMatchObject({
      code: 'DOWNLOAD_STALLED',
    });
    expect(existsSync(path.join(dir, 's.bin.part'))).toBe(false);
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
    needs: [{ anyOf: ['m/ckpt.pt'] }, { anyOf: ['m/data/a.pkl'] }],
    files: [{ url: '', dest: 'm.tar.gz', unpackInto: 'm', removeAfterUnpack: true }],
  };

  it('unpacks a tarball into its folder and checks the files the backend needs', async () => {
    const sources = { fake: { ...tarModel, files: [{ ...tarModel.files[0], url: `${base}/m.tar.gz`, sha256: sha(tarball) }] } as ModelSource };
    const logs: string[] = [];
    expect(await downloadModel('fake', { modelsDir: dir, sources, log: (l) => logs.push(l) })).toBe(true);
    expect(existsSync(path.join(dir, 'm', 'data', 'a.pkl'))).toBe(true);
    expect(existsSync(path.join(dir, 'm.tar.gz'))).toBe(false);
    // idempotent: nothing fetched again (the URL is gone now)
    const again = { fake: { ...tarModel, files: [{ ...tarModel.files[0], url: `${base}/gone` }] } as ModelSource };
    expect(await downloadModel('fake', { modelsDir: dir, sources: again, log: () => {} })).toBe(true);
  });

  it('MoveNet: ships in node_modules, nothing to download', async () => {
    const logs: string[] = [];
    expect(await downloadModel('movenet-thunder', { modelsDir: dir, log: (l) => logs.push(l) })).toBe(true);
    expect(logs.join()).toContain('nothing to download');
  });

  it('a model without a recorded source says so and what to put where, without touching the network', async () => {
    const logs: string[] = [];
    expect(await downloadModel('vitpose-b', { modelsDir: dir, log: (l) => logs.push(l) })).toBe(false);
    expect(logs.join('\n')).toContain(`put vitpose-b.pth or vitpose+_base.pth into ${dir}`);
    writeFileSync(path.join(dir, 'vitpose+_base.pth'), 'x'); // either file satisfies the need
    expect(missingFiles(MODEL_SOURCES['vitpose-b'], dir)).toEqual([]);
  });

  it('unknown names get the list of valid ones (exit 2)', async () => {
    const errors: string[] = [];
    const orig = console.error;
    console.error = (m: string) => errors.push(m);
    try {
      expect(await main(['no-such-model'])).toBe(2);
    } finally {
      console.error = orig;
    }
    expect(errors.join()).toContain('unknown model no-such-model');
    for (const name of MODEL_NAMES) expect(errors.join()).toContain(name);
  });
});

describe('the model-sources table', () => {
  it('has an entry for every model of protocol.json and nothing else', () => {
    expect(Object.keys(MODEL_SOURCES).sort()).toEqual([...MODEL_NAMES].sort());
  });

  it('download entries carry a checksum or size for every file; needsDownload models are never "bundled"', () => {
    for (const [name, source] of Object.entries(MODEL_SOURCES)) {
      if (source.kind === 'download') {
        for (const f of source.files) {
          expect(f.sha256 || f.size, `${name}: ${f.dest}`).toBeTruthy();
          expect(f.url, `${name}: ${f.dest}`).toMatch(/^https:\/\//);
        }
      }
      expect(['bundled', 'none'].includes(source.kind)).toBe(!PROTOCOL_NEEDS_DOWNLOAD(name));
    }
  });
});

import { PROTOCOL } from '../../protocol/index.js';
function PROTOCOL_NEEDS_DOWNLOAD(name: string): boolean {
  return PROTOCOL.models[name].needsDownload;
}
