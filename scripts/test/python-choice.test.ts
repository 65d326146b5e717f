import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../server/config.js';
import { PythonChoiceError, parsePythonChoice, readPythonChoice, workerPython } from '../../server/runtime/python-choice.js';

const CHECKER = path.join(import.meta.dirname, '..', 'check-python.py');

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'posepool-choice-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const record = {
  python: '/usr/bin/python3',
  version: '3.11.2',
  modules: { numpy: '1.24.2', cv2: '4.6.0', torch: '1.13.0a0' },
  checkedAt: '2026-01-01T00:00:00+00:00',
  how: 'system',
  cudaDeviceCount: 2,
  rejected: [{ python: '/root/.pyenv/shims/python3', reason: "missing cv2: No module named 'cv2'" }],
};

describe('readPythonChoice', () => {
  it('returns null when the set-up has not run', () => {
    expect(readPythonChoice(path.join(dir, 'absent.json'))).toBeNull();
  });

  it('reads the recorded interpreter, its modules and CUDA device count', () => {
    const file = path.join(dir, 'choice.json');
    writeFileSync(file, JSON.stringify(record));
    const choice = readPythonChoice(file);
    expect(choice).toEqual({ ...record });
    expect(choice?.cudaDeviceCount).toBe(2);
  });

  it('fills defaults for optional fields', () => {
    const c = parsePythonChoice(JSON.stringify({ python: '/x/python' }));
    expect(c).toMatchObject({ python: '/x/python', version: 'unknown', modules: {}, how: 'unknown', cudaDeviceCount: 0, rejected: [] });
  });

  it.each([
    ['not JSON', '{python:'],
    ['not an object', '[1,2]'],
    ['no python', JSON.stringify({ version: '3.11' })],
    ['empty python', JSON.stringify({ python: '' })],
  ])('a corrupt record (%s) is a ConfigError naming POSE_PYTHON and the fix', (_why, text) => {
    const file = path.join(dir, 'choice.json');
    writeFileSync(file, text);
    let err: unknown;
    try {
      readPythonChoice(file);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PythonChoiceError);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as PythonChoiceError).code).toBe('PYTHON_CHOICE_INVALID');
    expect((err as PythonChoiceError).variable).toBe('POSE_PYTHON');
    expect((err as Error).message).toContain('npm run setup');
  });
});

describe('workerPython', () => {
  it('POSE_PYTHON overrides the record', () => {
    const file = path.join(dir, 'choice.json');
    writeFileSync(file, JSON.stringify(record));
    expect(workerPython({ POSE_PYTHON: '/opt/py/bin/python' }, file)).toMatchObject({
      python: '/opt/py/bin/python',
      source: 'POSE_PYTHON',
      choice: { python: '/usr/bin/python3' },
    });
  });

  it('uses the record when POSE_PYTHON is unset or blank', () => {
    const file = path.join(dir, 'choice.json');
    writeFileSync(file, JSON.stringify(record));
    expect(workerPython({}, file)).toMatchObject({ python: '/usr/bin/python3', source: 'set-up' });
    expect(workerPython({ POSE_PYTHON: '  ' }, file)).toMatchObject({ python: '/usr/bin/python3', source: 'set-up' });
  });

  it('is null when neither exists; a corrupt record does not block POSE_PYTHON', () => {
    expect(workerPython({}, path.join(dir, 'absent.json'))).toBeNull();
    const file = path.join(dir, 'choice.json');
    writeFileSync(file, 'garbage');
    expect(workerPython({ POSE_PYTHON: '/p' }, file)).toEqual({ python: '/p', source: 'POSE_PYTHON', choice: null });
    expect(() => workerPython({}, file)).toThrow(PythonChoiceError);
  });
});

// The writer (scripts/check-python.py, run by the set-up) and the reader above must agree on the file.
describe.skipIf(process.platform === 'win32')('check-python.py writes what readPythonChoice reads', () => {
  const python = spawnSync('python3', ['-c', 'print(1)']).status === 0 ? 'python3' : null;

  it.skipIf(!python)('records an interpreter that imports every worker module', () => {
    const modules = path.join(dir, 'modules.txt');
    writeFileSync(modules, '# test table\njson json python3-json worker\nposepool_absent_mod x y tests\n');
    const out = path.join(dir, 'choice.json');
    const r = spawnSync(python!, [CHECKER, '--modules-file', modules, '--write', out, '--how', 'path'], {
      encoding: 'utf8',
      env: { ...process.env, POSEPOOL_REJECTED: '/bad/python\tmissing cv2' },
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^ok .*json /);
    const choice = readPythonChoice(out);
    expect(choice?.how).toBe('path');
    expect(choice?.modules.json).toBeTruthy();
    expect(choice?.modules.posepool_absent_mod).toBeUndefined();
    expect(choice?.rejected).toEqual([{ python: '/bad/python', reason: 'missing cv2' }]);
    expect(path.isAbsolute(choice!.python)).toBe(true);
  });

  it.skipIf(!python)('exits 2 when only a tests module is missing (with --tests), 1 when a worker module is', () => {
    const modules = path.join(dir, 'modules.txt');
    writeFileSync(modules, 'json json python3-json worker\nposepool_absent_mod x y tests\n');
    const out = path.join(dir, 'choice.json');
    const tests = spawnSync(python!, [CHECKER, '--modules-file', modules, '--tests', '--write', out], { encoding: 'utf8' });
    expect(tests.status).toBe(2);
    expect(tests.stdout).toMatch(/^missing posepool_absent_mod /);

    writeFileSync(modules, 'json json python3-json worker\nposepool_absent_mod x y worker\n');
    const worker = spawnSync(python!, [CHECKER, '--modules-file', modules, '--write', out], { encoding: 'utf8' });
    expect(worker.status).toBe(1);
    expect(worker.stdout).toContain("No module named 'posepool_absent_mod'");
    expect(readPythonChoice(out)).toBeNull(); // nothing recorded for an interpreter that lacks a module
  });
});
