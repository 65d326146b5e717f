/**
 * `models:download` end to end against a local HTTP server on 127.0.0.1: the real vitpose-b and hmr2 entries of
 * the sources table with their URLs pointed at small fake files (official containers and key names, the tiny
 * test architectures' shapes) and their key manifests replaced by test manifests for those shapes. The files
 * are checked by scripts/verify-model-files.py with the workers' Python, as in real use.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../../server/config.js';
import { testPython } from '../../../workers/test/support/prerequisites.js';
import { type FileChecker, pythonFileChecker } from '../../model-file-check.js';
import { type DownloadPlainFile, type DownloadTarball, MODEL_SOURCES, type ModelSource } from '../../model-sources.js';
import { downloadModel, main } from '../../models-download.js';
import { tarArchive } from '../support/tar-builder.js';

const PYTHON = testPython() ?? 'python3';
const CKPT = 'logs/train/multiruns/hmr2/0/checkpoints/epoch=35-step=1000000.ckpt';
const J19 = 'data/SMPL_to_J19.pkl';
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let fakes: string;
let server: http.Server;
let base: string;
let dir: string;
let checker: FileChecker;
const served = new Map<string, Buffer>();
const gets = new Map<string, number>();

function hmr2Tarball(ckpt: string): Buffer {
  const src = mkdtempSync(path.join(fakes, 'tar-'));
  mkdirSync(path.join(src, path.dirname(CKPT)), { recursive: true });
  mkdirSync(path.join(src, 'data'), { recursive: true });
  copyFileSync(ckpt, path.join(src, CKPT));
  copyFileSync(path.join(fakes, 'j19.pkl'), path.join(src, J19));
  writeFileSync(path.join(src, 'data', 'vitpose_backbone.pth'), 'not needed by posepool');
  writeFileSync(path.join(src, 'logs/train/multiruns/hmr2/0/model_config.yaml'), 'MODEL: {}\n');
  const out = `${src}.tar.gz`;
  expect(spawnSync('tar', ['-czf', out, '-C', src, '.']).status).toBe(0); // GNU tar, names like ./data/...
  return readFileSync(out);
}

beforeAll(async () => {
  fakes = mkdtempSync(path.join(os.tmpdir(), 'posepool-fakes-'));
  const made = spawnSync(PYTHON, [path.join(REPO_ROOT, 'scripts/test/support/make-fake-model-files.py'), fakes], { encoding: 'utf8' });
  expect(made.status, made.stderr).toBe(0);
  served.set('/vitpose-b.pth', readFileSync(path.join(fakes, 'vitpose.pth')));
  served.set('/vitpose-wrong.pth', readFileSync(path.join(fakes, 'vitpose-wrong.pth')));
  const good = hmr2Tarball(path.join(fakes, 'hmr2.ckpt'));
  served.set('/hmr2_data.tar.gz', good);
  served.set('/hmr2-cut.tar.gz', good.subarray(0, Math.floor(good.length / 2)));
  served.set('/hmr2-wrong.tar.gz', hmr2Tarball(path.join(fakes, 'vitpose.pth'))); // a checkpoint of another model
  served.set(
    '/hmr2-evil.tar.gz',
    gzipSync(
      tarArchive([
        { name: `./${CKPT}`, data: readFileSync(path.join(fakes, 'hmr2.ckpt')) },
        { name: `./${J19}`, data: readFileSync(path.join(fakes, 'j19.pkl')) },
        { name: '../../posepool-escape.txt', data: 'written outside?' },
      ]),
    ),
  );
  server = http.createServer((req, res) => {
    const body = served.get(req.url ?? '');
    if (req.method === 'GET') gets.set(req.url ?? '', (gets.get(req.url ?? '') ?? 0) + 1);
    if (!body) res.writeHead(404).end();
    else if (req.method === 'HEAD') res.writeHead(200, { 'content-length': body.length }).end();
    else res.writeHead(200, { 'content-length': body.length }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  checker = pythonFileChecker({ python: PYTHON });
});
afterAll(() => {
  server?.closeAllConnections();
  server?.close();
  if (fakes) rmSync(fakes, { recursive: true, force: true });
});
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'posepool-models-'));
  return () => rmSync(dir, { recursive: true, force: true });
});

type Download = Extract<ModelSource, { kind: 'download' }>;

/** The real vitpose-b entry, served locally; the test manifest; size and sha256 of the fake unless overridden. */
function vitposeB(url: string, overrides: Partial<DownloadPlainFile> = {}): Record<string, ModelSource> {
  const real = MODEL_SOURCES['vitpose-b'] as Download;
  const file = real.files[0] as DownloadPlainFile;
  const bytes = served.get('/vitpose-b.pth')!;
  return {
    'vitpose-b': {
      ...real,
      files: [
        {
          ...file,
          url: base + url,
          size: bytes.length,
          sha256: sha(bytes),
          check: { kind: 'checkpoint', format: 'vitpose', manifest: path.join(fakes, 'vitpose-manifest.json') },
          ...overrides,
        },
      ],
    },
  };
}

/** The real hmr2 entry (members, destinations, checks), served locally, with the test manifest. */
function hmr2(url: string): Record<string, ModelSource> {
  const real = MODEL_SOURCES.hmr2 as Download;
  const tar = real.files[0] as DownloadTarball;
  return {
    hmr2: {
      ...real,
      files: [
        {
          ...tar,
          url: base + url,
          mirrors: [],
          members: tar.members.map((m) =>
            m.check?.kind === 'checkpoint' ? { ...m, check: { ...m.check, manifest: path.join(fakes, 'hmr2-manifest.json') } } : m,
          ),
        },
      ],
    },
  };
}

describe('vitpose-b: a plain checkpoint', () => {
  it('downloads, verifies size, sha256 and the key manifest, and puts the file where the backend looks', async () => {
    const logs: string[] = [];
    expect(
      await downloadModel('vitpose-b', { modelsDir: dir, sources: vitposeB('/vitpose-b.pth'), checker, log: (l) => logs.push(l) }),
    ).toBe('ready');
    expect(readFileSync(path.join(dir, 'vitpose-b.pth')).equals(served.get('/vitpose-b.pth')!)).toBe(true);
    expect(readdirSync(dir)).toEqual(['vitpose-b.pth']);
    const text = logs.join('\n');
    expect(text).toContain('verification: size and sha256 as published by third parties');
    expect(text).toMatch(/sha256 [0-9a-f]{64} \(verified\)/);
    expect(text).toMatch(/vitpose-b\.pth: vitpose checkpoint vs vitpose-manifest\.json: OK \(43 tensors, names and shapes\)/);
  });

  it.each([
    [
      'a sha256 mismatch',
      { sha256: '0'.repeat(64) },
      'CHECKSUM_MISMATCH',
      /expected 0{64} \(size and sha256 as published by third parties/,
    ],
    ['a size mismatch', { size: 123 }, 'SIZE_MISMATCH', /announces \d+ bytes, expected 123/],
  ])('%s leaves nothing behind', async (_what, overrides, code, message) => {
    const err = await downloadModel('vitpose-b', {
      modelsDir: dir,
      sources: vitposeB('/vitpose-b.pth', overrides),
      checker,
      log: () => {},
    }).catch((e) => e);
    expect(err).toMatchObject({ code });
    expect(err.message).toMatch(message);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('a checkpoint whose tensors differ from the key manifest is refused and removed (no size or checksum recorded, as for S/L/H)', async () => {
    const sources = vitposeB('/vitpose-wrong.pth', { size: undefined, sha256: undefined });
    const logs: string[] = [];
    const err = await downloadModel('vitpose-b', { modelsDir: dir, sources, checker, log: (l) => logs.push(l) }).catch((e) => e);
    expect(err).toMatchObject({ code: 'MANIFEST_MISMATCH' });
    expect(err.message).toContain('vitpose-b.pth: vitpose checkpoint vs vitpose-manifest.json: does not match the key manifest');
    expect(err.message).toContain('keypoint_head.final_layer.weight [17, 8, 1, 1] != [17, 16, 1, 1]');
    expect(logs.join('\n')).toContain('(no recorded checksum)');
    expect(readdirSync(dir)).toEqual([]);
  });

  it("when the workers' Python cannot run the check, nothing is downloaded", async () => {
    const before = gets.get('/vitpose-b.pth') ?? 0;
    const broken = pythonFileChecker({ python: path.join(dir, 'no-such-python') });
    const err = await downloadModel('vitpose-b', {
      modelsDir: dir,
      sources: vitposeB('/vitpose-b.pth'),
      checker: broken,
      log: () => {},
    }).catch((e) => e);
    expect(err).toMatchObject({ code: 'VERIFIER_UNAVAILABLE' });
    expect(err.message).toContain('npm run setup');
    expect(gets.get('/vitpose-b.pth') ?? 0).toBe(before);
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('hmr2: the data archive', () => {
  it('streams the archive, takes only the two needed members into hmr2/, checks them, and asks for SMPL (exit 3)', async () => {
    const out: string[] = [];
    const code = await main(
      ['hmr2'],
      { POSE_MODELS_DIR: dir },
      { sources: hmr2('/hmr2_data.tar.gz'), checker, log: (l) => out.push(l), error: (l) => out.push(l) },
    );
    expect(code, out.join('\n')).toBe(3);
    expect(readFileSync(path.join(dir, 'hmr2', CKPT)).equals(readFileSync(path.join(fakes, 'hmr2.ckpt')))).toBe(true);
    expect(readFileSync(path.join(dir, 'hmr2', J19)).equals(readFileSync(path.join(fakes, 'j19.pkl')))).toBe(true);
    expect(readdirSync(dir)).toEqual(['hmr2']); // no archive, no staging folder
    expect(readdirSync(path.join(dir, 'hmr2', 'data'))).toEqual(['SMPL_to_J19.pkl']); // vitpose_backbone.pth not taken
    expect(readdirSync(path.join(dir, 'hmr2/logs/train/multiruns/hmr2/0'))).toEqual(['checkpoints']); // nor model_config.yaml
    const text = out.join('\n');
    expect(text).toMatch(/hmr2 checkpoint vs hmr2-manifest\.json: OK \(58 tensors/);
    expect(text).toContain('SMPL_to_J19 regressor: OK');
    expect(text).toContain('still needed: SMPL_NEUTRAL.pkl: the SMPL body model is licensed and never downloaded');
    expect(text).toContain('register at https://smpl.is.tue.mpg.de');
    // with the user's SMPL file in place: ready, and nothing is fetched again
    writeFileSync(path.join(dir, 'SMPL_NEUTRAL.pkl'), 'user supplied');
    const before = gets.get('/hmr2_data.tar.gz');
    expect(await main(['hmr2'], { POSE_MODELS_DIR: dir }, { sources: hmr2('/hmr2_data.tar.gz'), checker, log: () => {} })).toBe(0);
    expect(gets.get('/hmr2_data.tar.gz')).toBe(before);
  });

  it.each([
    [
      'a checkpoint of another model',
      '/hmr2-wrong.tar.gz',
      'MANIFEST_MISMATCH',
      /hmr2\/logs\/.*epoch=35-step=1000000\.ckpt: hmr2 checkpoint vs hmr2-manifest\.json: does not match/,
    ],
    ['a member climbing out of the folder', '/hmr2-evil.tar.gz', 'UNPACK_FAILED', /unsafe member name "\.\.\/\.\.\/posepool-escape\.txt"/],
    ['a truncated gzip stream', '/hmr2-cut.tar.gz', 'UNPACK_FAILED', /gzip: unexpected end of file/],
  ])('an archive with %s is refused and nothing is placed', async (_what, url, code, message) => {
    const err = await downloadModel('hmr2', { modelsDir: dir, sources: hmr2(url), checker, log: () => {} }).catch((e) => e);
    expect(err).toMatchObject({ code });
    expect(err.message).toMatch(message);
    expect(readdirSync(dir)).toEqual([]);
    expect(existsSync(path.join(dir, '..', 'posepool-escape.txt'))).toBe(false);
    expect(existsSync(path.join(os.tmpdir(), 'posepool-escape.txt'))).toBe(false);
  });
});

describe('without network', () => {
  it('fails within seconds with the reason and how to get the files by hand, before starting Python', async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    closed.close();
    const sources = { ...vitposeB('/vitpose-b.pth'), ...hmr2('/hmr2_data.tar.gz') };
    ((sources['vitpose-b'] as Download).files[0] as DownloadPlainFile).url = `http://127.0.0.1:${port}/vitpose-b.pth`;
    const tar = (sources.hmr2 as Download).files[0] as DownloadTarball;
    tar.url = 'https://posepool-no-such-host.invalid/hmr2_data.tar.gz';
    tar.mirrors = [`http://127.0.0.1:${port}/hmr2_data.tar.gz`];
    let pythonStarted = false;
    const spy: FileChecker = {
      ready: async () => {
        pythonStarted = true;
      },
      verify: async () => [],
    };
    const errors: string[] = [];
    const t0 = Date.now();
    const code = await main(
      ['vitpose-b', 'hmr2'],
      { POSE_MODELS_DIR: dir },
      { sources, checker: spy, connectTimeoutMs: 1500, log: () => {}, error: (l) => errors.push(l) },
    );
    expect(Date.now() - t0).toBeLessThan(8000);
    expect(code).toBe(1);
    const text = errors.join('\n');
    expect(text).toMatch(/vitpose-b: FAILED \[NETWORK_UNREACHABLE\] cannot reach 127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
    expect(text).toMatch(
      /hmr2: FAILED \[NETWORK_UNREACHABLE\] cannot reach posepool-no-such-host\.invalid \(\w+\); cannot reach 127\.0\.0\.1/,
    );
    expect(text).toContain(
      `vitpose-b: no network here? run the command on a machine that has it and copy ${dir}, or by hand: save the ViTPose-B COCO checkpoint`,
    );
    expect(text).toContain(`unpack it into ${dir}/hmr2/`);
    expect(text).toContain('hmr2: also needed, whatever the download: SMPL_NEUTRAL.pkl: the SMPL body model is licensed');
    expect(pythonStarted).toBe(false);
    expect(readdirSync(dir)).toEqual([]);
  });
});
