/**
 * `posepool pose video.mp4 > poses.json` (dist/server/cli.js, the package's bin): the same pool and
 * pipeline as the server without HTTP. Real Python workers running the synthetic test double.
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PoseResponse } from '../../pipeline/pose-response.js';
import { buildOnce, REPO } from '../support/server-process.js';
import { FIXTURES, IMAGES, testPython } from '../support/test-server.js';

const CLI = path.join(REPO, 'dist', 'server', 'cli.js');
const scratch = mkdtempSync(path.join(os.tmpdir(), 'cli-test-'));
const baseEnv = { ...process.env, POSE_MODEL: 'synthetic', POSE_WORKERS: '1', POSE_THREADS: '1', POSE_PYTHON: testPython(), LOG_LEVEL: '' };

function run(
  args: string[],
  env: Record<string, string> = {},
  timeout = 60_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { cwd: REPO, env: { ...baseEnv, ...env }, timeout, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr });
      },
    );
  });
}

beforeAll(() => buildOnce(), 120_000);
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('posepool pose (CLI)', () => {
  it("writes the synchronous route's JSON to stdout, and nothing else, with a summary on stderr", async () => {
    const r = await run(['pose', path.join(FIXTURES, 'messi-pan.mp4'), '--fps', '10', '--role', 'coach']);
    expect(r.stderr).toMatch(/^posepool: 20\/20 frames with a pose in [\d.]+ s \(synthetic on cpu\)\n$/);
    expect(r.code).toBe(0);
    const body = JSON.parse(r.stdout) as PoseResponse;
    expect(body.role).toBe('coach');
    expect(body.video).toMatchObject({ width: 548, height: 342, fps: 30 });
    expect(body.model).toMatchObject({ name: 'synthetic', device: 'cpu' });
    expect(body.model.keypoints).toHaveLength(17);
    expect(body.frames).toHaveLength(20);
    body.frames.forEach((f, i) => {
      expect(f.index).toBe(i);
      expect(f.timeMs).toBe(i * 100);
      expect(f.persons[0].keypoints).toHaveLength(17);
    });
    expect(body.summary).toMatchObject({ framesSampled: 20, framesWithPose: 20, framesFailed: 0 });
    // Not a terminal: no progress bar, no escape codes.
    expect(r.stderr).not.toMatch(/\u001b\[/);
  });

  it('--output, --max-frames, --no-smoothing, --pretty, --quiet', async () => {
    const out = path.join(scratch, 'poses.json');
    const r = await run([
      'pose',
      path.join(FIXTURES, 'messi-rot90.mp4'),
      '--max-frames',
      '3',
      '--no-smoothing',
      '--pretty',
      '-q',
      '-o',
      out,
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('');
    const text = readFileSync(out, 'utf8');
    expect(text).toMatch(/^\{\n {2}"id": /);
    const body = JSON.parse(text);
    expect(body.frames).toHaveLength(3);
    expect(body.video).toMatchObject({ width: 342, height: 548 }); // upright (rotation metadata applied)
  });

  it('draws a progress bar on stderr when it is a terminal', () => {
    // util-linux `script` gives the command a pseudo-terminal; stdout goes to a file.
    const out = path.join(scratch, 'tty.json');
    const cmd = `'${process.execPath}' '${CLI}' pose '${path.join(FIXTURES, 'vtest-3s.mp4')}' > '${out}'`;
    const r = spawnSync('script', ['-qec', cmd, '/dev/null'], {
      cwd: REPO,
      env: { ...baseEnv, POSE_SYNTHETIC_FAULTS: 'infer_ms=30', TERM: 'xterm' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/starting 1 worker\(s\) with synthetic/);
    expect(r.stdout).toMatch(/posing \[[^\]]+\] \d+\/30 frames/);
    expect(r.stdout).toMatch(/posing \[[^\]]+\] 30\/30 frames/);
    expect(r.stdout).toMatch(/30\/30 frames with a pose/);
    expect(JSON.parse(readFileSync(out, 'utf8')).frames).toHaveLength(30);
  });

  it('fails with one line and the right exit code: usage, configuration, input, workers', async () => {
    const usage = await run([]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/^posepool: usage: posepool pose <video>/);
    const missing = await run(['pose', 'no-such.mp4']);
    expect(missing).toMatchObject({ code: 2, stderr: 'posepool: no such file: no-such.mp4\n' });
    const badFps = await run(['pose', path.join(FIXTURES, 'vtest-3s.mp4'), '--fps', 'fast']);
    expect(badFps.code).toBe(2);
    expect(badFps.stderr).toMatch(/^posepool: --fps: fps must be a positive number\n$/);
    const badModel = await run(['pose', path.join(FIXTURES, 'vtest-3s.mp4')], { POSE_MODEL: 'nope' });
    expect(badModel.code).toBe(2);
    expect(badModel.stderr).toMatch(/^posepool: configuration error: POSE_MODEL: unknown model "nope"/);
    const still = await run(['pose', path.join(IMAGES, 'messi5.jpg')]);
    expect(still.code).toBe(1);
    expect(still.stderr).toMatch(/^posepool: NOT_A_VIDEO: /);
    expect(still.stdout).toBe('');

    const t0 = Date.now();
    const broken = await run(['pose', path.join(FIXTURES, 'vtest-3s.mp4')], { POSE_SYNTHETIC_FAULTS: 'startup_crash' });
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(
      /^posepool: POSE_SERVICE_UNAVAILABLE: no pose worker is ready: RuntimeError: synthetic startup_crash fault\. Fix: /,
    );
    expect(broken.stdout).toBe('');
    expect(Date.now() - t0).toBeLessThan(15_000); // fails fast, not after POSE_STARTUP_TIMEOUT_MS
  });

  // What `npx posepool` / a global install runs: npm links package.json's bin and the OS reads the file's
  // shebang. Checked without npx itself, whose cache handling of a package's own bin differs between npm
  // versions and machines (a fresh CI machine once answered 127 where every other machine ran it).
  it('runs as the package bin: package.json bin → a node script with a shebang', () => {
    const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8'));
    const bin = path.join(REPO, pkg.bin.posepool);
    expect(bin).toBe(CLI);
    expect(readFileSync(bin, 'utf8').split('\n', 1)[0]).toBe('#!/usr/bin/env node');
    const r = spawnSync(process.execPath, [bin, '--version'], { cwd: os.tmpdir(), env: baseEnv, encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(pkg.version);
  });
});
