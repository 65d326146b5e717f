/** The WebAssembly ruff that `npm run lint` uses where pip could not install ruff: same settings, same verdicts. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { wasmRuff } from '../lint.mjs';

const dir = mkdtempSync(path.join(os.tmpdir(), 'posepool-lint-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('ruff (WebAssembly build) with pose-service/pyproject.toml', () => {
  it('finds an unused import, unsorted imports and unformatted code; --fix formats the file', async () => {
    const file = path.join(dir, 'bad.py');
    writeFileSync(file, 'import sys\nimport os\nx=1\n');
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    try {
      expect(await wasmRuff([file], false)).toBe(4);
      const lines = log.mock.calls.map((c) => String(c[0]));
      expect(lines.some((l) => l.includes('F401'))).toBe(true);
      expect(lines.some((l) => l.includes('I001'))).toBe(true);
      expect(lines.some((l) => l.includes('not formatted'))).toBe(true);
      await wasmRuff([file], true);
      expect(readFileSync(file, 'utf8')).toBe('import sys\nimport os\n\nx = 1\n');
    } finally {
      log.mockRestore();
    }
  });

  it('accepts a clean file', async () => {
    const file = path.join(dir, 'good.py');
    writeFileSync(file, 'import os\n\nprint(os.sep)\n');
    expect(await wasmRuff([file], false)).toBe(0);
  });
});
