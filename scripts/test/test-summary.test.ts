import { describe, expect, it } from 'vitest';
import { failSkipsUnderCI, formatSummary, parsePytestSummary, parseVitestSummary, stripAnsi, summarizeRun } from '../lib/test-summary.mjs';

// Tails of real vitest 3 / pytest 7 runs.
const VITEST_MIXED = `
⎯⎯⎯⎯⎯⎯ Failed Suites 1 ⎯⎯⎯⎯⎯⎯⎯

 FAIL  b.test.ts [ b.test.ts ]
Error: Failed to load url ./nonexistent.js (resolved id: ./nonexistent.js) in /tmp/vt/b.test.ts. Does the file exist?

⎯⎯⎯⎯⎯⎯⎯ Failed Tests 1 ⎯⎯⎯⎯⎯⎯⎯

 FAIL  a.test.ts > bad
AssertionError: expected 1 to be 2 // Object.is equality

 Test Files  2 failed (2)
      Tests  1 failed | 1 passed | 1 skipped | 1 todo (4)
   Start at  05:02:40
   Duration  1.43s (transform 125ms, setup 0ms, collect 90ms, tests 37ms, environment 1ms, prepare 354ms)
`;
const VITEST_IMPORT_ONLY = `
 Test Files  1 failed (1)
      Tests  no tests
   Start at  05:02:42
   Duration  854ms
`;
const VITEST_GREEN_COLORED =
  '\u001b[2m Test Files \u001b[22m \u001b[1m\u001b[32m12 passed\u001b[39m\u001b[22m\u001b[90m (12)\u001b[39m\n' +
  '\u001b[2m      Tests \u001b[22m \u001b[1m\u001b[32m131 passed\u001b[39m\u001b[22m\u001b[2m | \u001b[22m\u001b[33m2 skipped\u001b[39m\u001b[90m (133)\u001b[39m\n';

describe('vitest summary', () => {
  it('reads passed, failed, skipped and todo, and suites that failed to load', () => {
    expect(parseVitestSummary(VITEST_MIXED)).toMatchObject({
      found: true,
      passed: 1,
      failed: 1,
      skipped: 2,
      suitesFailed: 1,
      filesFailed: 2,
    });
    const run = summarizeRun('vitest', 1, VITEST_MIXED);
    expect(run).toMatchObject({ passed: 1, failed: 2, skipped: 2 });
    expect(run.notes[0]).toContain('1 test file(s) failed before their tests ran');
  });

  it('strips colors', () => {
    expect(stripAnsi('\u001b[32m5 passed\u001b[39m')).toBe('5 passed');
    expect(parseVitestSummary(VITEST_GREEN_COLORED)).toMatchObject({ found: true, passed: 131, failed: 0, skipped: 2 });
  });

  it('a file that fails to import with no tests counted still counts as a failure', () => {
    expect(summarizeRun('vitest', 1, VITEST_IMPORT_ONLY)).toMatchObject({ passed: 0, failed: 1 });
  });

  it('a green count with a non-zero exit (an unhandled error) is a failure, with the reason', () => {
    const run = summarizeRun('vitest', 1, VITEST_GREEN_COLORED);
    expect(run.failed).toBe(1);
    expect(run.notes.join()).toMatch(/exited with status 1/);
  });

  it('uses the last summary line', () => {
    expect(parseVitestSummary(' Tests  1 passed (1)\n...\n Tests  3 passed | 1 failed (4)\n')).toMatchObject({ passed: 3, failed: 1 });
  });
});

describe('pytest summary', () => {
  it.each([
    ['114 passed in 35.54s', { passed: 114, failed: 0, skipped: 0 }],
    ['1 failed, 2 passed, 1 skipped, 1 xfailed in 0.50s', { passed: 2, failed: 1, skipped: 2 }],
    ['========= 3 passed, 2 warnings in 1.20s =========', { passed: 3, failed: 0, skipped: 0 }],
    ['1 error in 0.07s', { passed: 0, failed: 1, skipped: 0 }],
    ['2 passed, 1 xpassed, 3 errors in 4.00s', { passed: 3, failed: 3, skipped: 0 }],
    ['1 passed, 1 deselected in 0.1s', { passed: 1, failed: 0, skipped: 0 }],
  ])('%s', (line, expected) => {
    expect(parsePytestSummary(`....F\n${line}\n`)).toMatchObject({ found: true, ...expected });
  });

  it('ignores test output that merely looks like counts', () => {
    expect(parsePytestSummary('print: 5 passed by the model\n1 passed in 0.01s\n')).toMatchObject({ passed: 1 });
  });

  it('exit status 5 (nothing collected) is a failure, never a silent pass', () => {
    const run = summarizeRun('pytest', 5, 'no tests ran in 0.00s\n');
    expect(run).toMatchObject({ passed: 0, failed: 1 });
    expect(run.notes[0]).toContain('no tests were collected (exit status 5)');
  });

  it('a runner that could not start is a failure', () => {
    expect(summarizeRun('pytest', null, '')).toMatchObject({ failed: 1 });
  });

  it('keeps real failures as counted', () => {
    expect(summarizeRun('pytest', 1, '2 failed, 5 passed in 1.0s')).toMatchObject({ passed: 5, failed: 2, notes: [] });
  });
});

describe('the final line', () => {
  it('sums both runners; skipped only when any', () => {
    expect(
      formatSummary([
        { passed: 10, failed: 0, skipped: 0 },
        { passed: 114, failed: 0, skipped: 0 },
      ]),
    ).toBe('124 passed, 0 failed');
    expect(
      formatSummary([
        { passed: 1, failed: 2, skipped: 2 },
        { passed: 3, failed: 1, skipped: 1 },
      ]),
    ).toBe('4 passed, 3 failed, 3 skipped');
    expect(formatSummary([])).toBe('0 passed, 0 failed');
  });
});

describe('skips under CI', () => {
  const counts = () => ({ passed: 5, failed: 0, skipped: 2, found: true, notes: [] as string[] });
  it('count as failures under CI=true, with a note', () => {
    const c = failSkipsUnderCI(counts(), { CI: 'true' }, 'linux');
    expect(c).toMatchObject({ passed: 5, failed: 2, skipped: 2 });
    expect(c.notes[0]).toMatch(/2 skipped under CI=true/);
  });
  it('stay skips outside CI, and on Windows (its documented platform skips)', () => {
    expect(failSkipsUnderCI(counts(), {}, 'linux')).toMatchObject({ failed: 0, notes: [] });
    expect(failSkipsUnderCI(counts(), { CI: 'false' }, 'linux')).toMatchObject({ failed: 0 });
    expect(failSkipsUnderCI(counts(), { CI: 'true' }, 'win32')).toMatchObject({ failed: 0 });
  });
});
