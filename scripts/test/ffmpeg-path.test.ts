import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  findOnPath,
  MediaToolNotFoundError,
  type ResolveOptions,
  resolveFfmpeg,
  resolveFfprobe,
  resolveMediaTools,
} from '../../server/runtime/ffmpeg-path.js';
// The set-up's pre-build check follows the same order; it must agree with the server's resolution.
import { findMediaTools } from '../lib/media-tools-present.mjs';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'posepool-ffmpeg-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** An executable file at dir/rel. */
function tool(rel: string, mode = 0o755): string {
  const file = path.join(dir, rel);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, '#!/bin/sh\necho fake\n');
  chmodSync(file, mode);
  return file;
}

const noPackages: ResolveOptions['packageBinary'] = () => null;

describe.skipIf(process.platform === 'win32')('ffmpeg resolution order', () => {
  it('FFMPEG_PATH first', () => {
    const fromEnv = tool('env/ffmpeg');
    tool('static/ffmpeg');
    tool('bin/ffmpeg');
    const r = resolveFfmpeg({
      env: { FFMPEG_PATH: fromEnv, PATH: path.join(dir, 'bin') },
      packageBinary: (p) => (p === 'ffmpeg-static' ? path.join(dir, 'static/ffmpeg') : null),
    });
    expect(r).toEqual({ path: fromEnv, source: 'FFMPEG_PATH' });
  });

  it('a FFMPEG_PATH that is not an executable file is an error naming the variable, never skipped', () => {
    tool('bin/ffmpeg');
    const notExec = tool('env/ffmpeg', 0o644);
    for (const value of [path.join(dir, 'missing'), notExec]) {
      let err: unknown;
      try {
        resolveFfmpeg({ env: { FFMPEG_PATH: value, PATH: path.join(dir, 'bin') }, packageBinary: noPackages });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(MediaToolNotFoundError);
      expect((err as MediaToolNotFoundError).code).toBe('FFMPEG_NOT_FOUND');
      expect((err as Error).message).toContain(`FFMPEG_PATH=${value}`);
    }
  });

  it("ffmpeg-static's binary next, only when the file is really there", () => {
    tool('bin/ffmpeg');
    const env = { PATH: path.join(dir, 'bin') };
    const staticPath = path.join(dir, 'static/ffmpeg');
    const pkg: ResolveOptions['packageBinary'] = (p) => (p === 'ffmpeg-static' ? staticPath : null);
    // installed package whose download did not run: the path it reports does not exist
    expect(resolveFfmpeg({ env, packageBinary: pkg })).toEqual({ path: path.join(dir, 'bin/ffmpeg'), source: 'PATH' });
    tool('static/ffmpeg');
    expect(resolveFfmpeg({ env, packageBinary: pkg })).toEqual({ path: staticPath, source: 'ffmpeg-static' });
  });

  it('then PATH, in PATH order, skipping non-executable files', () => {
    tool('a/ffmpeg', 0o644);
    const b = tool('b/ffmpeg');
    tool('c/ffmpeg');
    const env = { PATH: ['a', 'b', 'c'].map((d) => path.join(dir, d)).join(':') };
    expect(resolveFfmpeg({ env, packageBinary: noPackages })).toEqual({ path: b, source: 'PATH' });
  });

  it('none: FFMPEG_NOT_FOUND with the install fix', () => {
    expect(() => resolveFfmpeg({ env: { PATH: path.join(dir, 'empty') }, packageBinary: noPackages })).toThrow(
      /ffmpeg not found .*apt-get install ffmpeg.*or set FFMPEG_PATH/,
    );
  });
});

describe.skipIf(process.platform === 'win32')('ffprobe resolution order', () => {
  const probeStatic = () => path.join(dir, 'probe-static/ffprobe');
  const pkg: ResolveOptions['packageBinary'] = (p) => (p === 'ffprobe-static' ? probeStatic() : null);

  it('FFPROBE_PATH, then next to ffmpeg, then ffprobe-static, then PATH', () => {
    const fromEnv = tool('env/ffprobe');
    const ffmpeg = tool('tools/ffmpeg');
    const sibling = tool('tools/ffprobe');
    tool('probe-static/ffprobe');
    const onPath = tool('bin/ffprobe');
    const env = { PATH: path.join(dir, 'bin') };

    expect(resolveFfprobe(ffmpeg, { env: { ...env, FFPROBE_PATH: fromEnv }, packageBinary: pkg })).toEqual({
      path: fromEnv,
      source: 'FFPROBE_PATH',
    });
    expect(resolveFfprobe(ffmpeg, { env, packageBinary: pkg })).toEqual({ path: sibling, source: 'next to ffmpeg' });
    rmSync(sibling);
    expect(resolveFfprobe(ffmpeg, { env, packageBinary: pkg })).toEqual({ path: probeStatic(), source: 'ffprobe-static' });
    rmSync(probeStatic());
    expect(resolveFfprobe(ffmpeg, { env, packageBinary: pkg })).toEqual({ path: onPath, source: 'PATH' });
    rmSync(onPath);
    expect(() => resolveFfprobe(ffmpeg, { env, packageBinary: pkg })).toThrow(MediaToolNotFoundError);
  });

  it('a bad FFPROBE_PATH is FFPROBE_NOT_FOUND', () => {
    try {
      resolveFfprobe(null, { env: { FFPROBE_PATH: path.join(dir, 'nope') }, packageBinary: noPackages });
      expect.unreachable();
    } catch (err) {
      expect((err as MediaToolNotFoundError).code).toBe('FFPROBE_NOT_FOUND');
    }
  });

  it('resolveMediaTools pairs them, with their sources', () => {
    const ffmpeg = tool('x/ffmpeg');
    const ffprobe = tool('x/ffprobe');
    expect(resolveMediaTools({ env: { FFMPEG_PATH: ffmpeg, PATH: '' }, packageBinary: noPackages })).toEqual({
      ffmpeg: { path: ffmpeg, source: 'FFMPEG_PATH' },
      ffprobe: { path: ffprobe, source: 'next to ffmpeg' },
    });
  });
});

describe('findOnPath', () => {
  it('uses PATHEXT and ; on Windows', () => {
    const exe = tool('win/ffmpeg.EXE', 0o644); // Windows has no execute bit to check
    expect(findOnPath('ffmpeg', { Path: `${path.join(dir, 'nothing')};${path.join(dir, 'win')}`, PATHEXT: '.COM;.EXE' }, 'win32')).toBe(
      exe,
    );
  });
});

describe.skipIf(process.platform === 'win32')("the set-up's pre-build check agrees with the server", () => {
  it('for FFMPEG_PATH, PATH, and FFPROBE_PATH configurations', () => {
    const ffmpeg = tool('tools/ffmpeg');
    const ffprobe = tool('tools/ffprobe');
    const otherProbe = tool('other/ffprobe');
    const configs: NodeJS.ProcessEnv[] = [
      { FFMPEG_PATH: ffmpeg, PATH: '' },
      { PATH: path.join(dir, 'tools') },
      { PATH: path.join(dir, 'tools'), FFPROBE_PATH: otherProbe },
    ];
    for (const env of configs) {
      // the real packages (ffprobe-static is installed): same for both sides
      const server = resolveMediaTools({ env });
      expect(findMediaTools(env)).toEqual({ ffmpeg: server.ffmpeg.path, ffprobe: server.ffprobe.path });
    }
    expect(resolveMediaTools({ env: configs[0] }).ffprobe.path).toBe(ffprobe);
  });
});
