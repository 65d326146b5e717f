/**
 * The set-up's interpreter choice, run for real on throw-away interpreters: two venvs, one that can
 * import every listed module and one that cannot (the founding bug: the first python3 on PATH lacked
 * cv2 and torch). The module table is replaced by one naming a module only the good venv has.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const SCRIPTS = path.join(import.meta.dirname, '..');
const hasPython = process.platform !== 'win32' && spawnSync('python3', ['-c', 'import venv']).status === 0;

describe.skipIf(!hasPython)('setup-pose-service.sh', () => {
  let tmp: string;
  let root: string;
  let good: string; // venv python that has posepool_fake_needed
  let bad: string; // venv python that lacks it
  let binBad: string;
  let binGood: string;

  const run = (env: Record<string, string>, args: string[] = []) =>
    spawnSync('bash', [path.join(root, 'scripts', 'setup-pose-service.sh'), ...args], {
      encoding: 'utf8',
      env: { HOME: process.env.HOME ?? '/tmp', POSEPOOL_SETUP_NO_INSTALL: '1', ...env },
      timeout: 60_000,
    });
  const choice = () => JSON.parse(readFileSync(path.join(root, 'pose-service', '.python-choice.json'), 'utf8'));

  beforeAll(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'posepool-setup-'));
    root = path.join(tmp, 'repo');
    mkdirSync(path.join(root, 'scripts'), { recursive: true });
    mkdirSync(path.join(root, 'pose-service', 'posepool_worker'), { recursive: true });
    for (const f of ['setup-pose-service.sh', 'check-python.py']) copyFileSync(path.join(SCRIPTS, f), path.join(root, 'scripts', f));
    writeFileSync(
      path.join(root, 'pose-service', 'posepool_worker', 'python-modules.txt'),
      'json json python3-json worker\nposepool_fake_needed fake-pkg python3-fake worker\n',
    );

    const venv = (name: string) => {
      const dir = path.join(tmp, name);
      const r = spawnSync('python3', ['-m', 'venv', '--without-pip', dir]);
      if (r.status !== 0) throw new Error(`python3 -m venv failed: ${r.stderr}`);
      return path.join(dir, 'bin', 'python');
    };
    good = venv('venv-good');
    bad = venv('venv-bad');
    const purelib = spawnSync(good, ['-c', "import sysconfig; print(sysconfig.get_paths()['purelib'])"], {
      encoding: 'utf8',
    }).stdout.trim();
    // FAKE_BLAS: a shared library to load as if it were the BLAS torch links (the slow-BLAS check)
    writeFileSync(
      path.join(purelib, 'posepool_fake_needed.py'),
      "import ctypes, os\nif os.environ.get('FAKE_BLAS'):\n    ctypes.CDLL(os.environ['FAKE_BLAS'])\n__version__ = '1.2.3'\n",
    );

    // PATH: python3 is the bad interpreter (first), python the good one.
    binBad = path.join(tmp, 'bin-bad');
    binGood = path.join(tmp, 'bin-good');
    mkdirSync(binBad);
    mkdirSync(binGood);
    const wrapper = (file: string, target: string) => {
      writeFileSync(file, `#!/bin/sh\nexec "${target}" "$@"\n`);
      chmodSync(file, 0o755);
    };
    wrapper(path.join(binBad, 'python3'), bad);
    wrapper(path.join(binGood, 'python'), good);
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('skips the first python3 on PATH when it lacks a module, and records the one that has them all', () => {
    const r = run({ PATH: `${binBad}:${binGood}:/usr/bin:/bin` });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/rejected: missing posepool_fake_needed: .*venv-bad/);
    const c = choice();
    expect(c.python).toBe(good);
    expect(c.how).toBe('path');
    expect(c.modules).toMatchObject({ posepool_fake_needed: '1.2.3' });
    expect(c.rejected.map((x: { python: string }) => x.python)).toContain(path.join(binBad, 'python3'));
  });

  it('is idempotent: a second run re-validates the record with one check and changes nothing else', () => {
    const before = choice();
    const t0 = Date.now();
    const r = run({ PATH: `${binBad}:${binGood}:/usr/bin:/bin` });
    expect(r.status).toBe(0);
    expect(r.stdout).not.toContain('rejected');
    expect(r.stdout).toContain(`using ok ${good}`);
    expect(choice()).toMatchObject({ python: before.python, how: before.how, modules: before.modules });
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  // /proc/self/maps tells which BLAS is mapped: Linux only
  it.skipIf(process.platform !== 'linux')('records the BLAS in use and warns, with the fix, where it is the slow reference one', () => {
    expect(choice().blas).toMatchObject({ reference: false });
    // any shared library without an optimized BLAS's symbols, where Debian keeps the reference BLAS (a blas/ folder)
    const ctypesSo = spawnSync(good, ['-c', 'import _ctypes; print(_ctypes.__file__)'], { encoding: 'utf8' }).stdout.trim();
    mkdirSync(path.join(tmp, 'blas'), { recursive: true });
    const fake = path.join(realpathSync(tmp), 'blas', 'libblas.so.3');
    copyFileSync(ctypesSo, fake);
    const r = run({ PATH: `${binBad}:${binGood}:/usr/bin:/bin`, FAKE_BLAS: fake });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/warning: .* does its matrix products with the reference BLAS/);
    expect(r.stdout).toContain('apt-get install libopenblas0-openmp');
    expect(choice().blas).toMatchObject({ reference: true, libraries: [{ path: fake, reference: true }] });
    run({ PATH: `${binBad}:${binGood}:/usr/bin:/bin` });
    expect(choice().blas).toMatchObject({ reference: false });
  });

  it('refuses a POSE_PYTHON that lacks a module, naming the variable and the fix', () => {
    const r = run({ PATH: `${binGood}:/usr/bin:/bin`, POSE_PYTHON: path.join(binBad, 'python3') });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('POSE_PYTHON=');
    expect(r.stderr).toContain("No module named 'posepool_fake_needed'");
    expect(r.stderr).toContain('-m pip install json fake-pkg');
  });

  it('refuses a POSE_PYTHON that does not exist', () => {
    const r = run({ PATH: '/usr/bin:/bin', POSE_PYTHON: path.join(tmp, 'nope', 'python') });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/POSE_PYTHON=.*does not exist/);
  });

  it('fails with what is missing and how to fix it when no interpreter has the modules', () => {
    const r = run({ PATH: `${binBad}:/usr/bin:/bin` }, ['--force']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('no Python interpreter here can import: json posepool_fake_needed');
    expect(r.stderr).toMatch(/Tried:\n {2}missing posepool_fake_needed: .*venv-bad/);
    expect(r.stderr).toContain('pip install json fake-pkg');
    expect(r.stderr).toContain('apt-get install python3-json python3-fake');
  });

  it('prefers pose-service/.venv over PATH', () => {
    const venvDir = path.join(root, 'pose-service', '.venv');
    spawnSync('python3', ['-m', 'venv', '--without-pip', venvDir]);
    const purelib = spawnSync(path.join(venvDir, 'bin', 'python'), ['-c', "import sysconfig; print(sysconfig.get_paths()['purelib'])"], {
      encoding: 'utf8',
    }).stdout.trim();
    writeFileSync(path.join(purelib, 'posepool_fake_needed.py'), "__version__ = '9'\n");
    const r = run({ PATH: `${binGood}:/usr/bin:/bin` }, ['--force']);
    expect(r.status).toBe(0);
    expect(choice()).toMatchObject({ python: path.join(venvDir, 'bin', 'python'), how: 'venv' });
  });
});
