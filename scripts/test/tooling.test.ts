/** The small pieces of the set-up tooling: platform dispatch, build staleness, the doctor's helpers. */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { jpegSize, readModuleTable } from '../doctor.js';
import { staleReason } from '../lib/build.mjs';
import { poseServiceSetupCommands } from '../setup.mjs';

const ROOT = path.join(import.meta.dirname, '..', '..');

describe('setup.mjs platform dispatch', () => {
  it('runs the bash script on Linux and macOS', () => {
    for (const platform of ['linux', 'darwin'] as const) {
      const [only, ...rest] = poseServiceSetupCommands(platform, { tests: true });
      expect(rest).toEqual([]);
      expect(only.command).toBe('bash');
      expect(only.args[0]).toBe(path.join(ROOT, 'scripts', 'setup-pose-service.sh'));
      expect(only.args.slice(1)).toEqual(['--tests']);
    }
  });

  it('runs the PowerShell script on Windows (pwsh, else Windows PowerShell), flags mapped', () => {
    const cmds = poseServiceSetupCommands('win32', { tests: true, force: true });
    expect(cmds.map((c) => c.command)).toEqual(['pwsh', 'powershell.exe']);
    for (const c of cmds) {
      expect(c.args).toContain(path.join(ROOT, 'scripts', 'setup-pose-service.ps1'));
      expect(c.args).toContain('-ExecutionPolicy');
      expect(c.args.slice(-2)).toEqual(['-Tests', '-Force']);
    }
  });
});

describe('build staleness', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'posepool-build-'));
    for (const d of ['server/test', 'protocol', 'dist/protocol']) mkdirSync(path.join(dir, d), { recursive: true });
    writeFileSync(path.join(dir, 'tsconfig.json'), '{}');
    writeFileSync(path.join(dir, 'server', 'app.ts'), '');
    writeFileSync(path.join(dir, 'server', 'test', 'app.test.ts'), '');
    writeFileSync(path.join(dir, 'protocol', 'protocol.json'), '{}');
    writeFileSync(path.join(dir, 'dist', 'protocol', 'protocol.json'), '{}');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const age = (rel: string, secondsAgo: number) => {
    const t = new Date(Date.now() - secondsAgo * 1000);
    utimesSync(path.join(dir, rel), t, t);
  };

  it('builds when never built, skips when dist is newer than every source', () => {
    expect(staleReason(dir)).toBe('no build yet');
    for (const f of ['tsconfig.json', 'server/app.ts', 'protocol/protocol.json']) age(f, 60);
    writeFileSync(path.join(dir, 'dist', '.build-stamp'), '');
    expect(staleReason(dir)).toBeNull();
  });

  it('a changed source or a missing copied asset makes it stale; a changed test does not', () => {
    for (const f of ['tsconfig.json', 'server/app.ts', 'protocol/protocol.json']) age(f, 60);
    writeFileSync(path.join(dir, 'dist', '.build-stamp'), '');
    age('dist/.build-stamp', 30);
    expect(staleReason(dir)).toBeNull(); // the test file is newer, but tests are not compiled
    age('server/app.ts', 0);
    expect(staleReason(dir)).toBe(`${path.join('server', 'app.ts')} changed`);
    age('server/app.ts', 60);
    rmSync(path.join(dir, 'dist', 'protocol', 'protocol.json'));
    expect(staleReason(dir)).toBe('dist/protocol/protocol.json missing');
  });
});

describe("doctor's helpers", () => {
  it('reads JPEG dimensions from the SOF marker', () => {
    expect(jpegSize(readFileSync(path.join(ROOT, 'pose-service', 'tests', 'fixtures', 'messi5.jpg')))).toEqual({ width: 548, height: 342 });
    expect(jpegSize(Buffer.from('not a jpeg'))).toBeNull();
  });

  it('reads the one module table (worker modules: numpy, cv2, torch; tests: pytest)', () => {
    const table = readModuleTable();
    expect(table.filter((m) => m.neededBy === 'worker').map((m) => m.name)).toEqual(['numpy', 'cv2', 'torch']);
    expect(table.find((m) => m.name === 'cv2')).toEqual({
      name: 'cv2',
      pip: 'opencv-python-headless',
      apt: 'python3-opencv',
      neededBy: 'worker',
    });
    expect(table.find((m) => m.name === 'pytest')?.neededBy).toBe('tests');
  });
});
