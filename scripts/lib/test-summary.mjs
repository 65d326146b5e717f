/**
 * Reading vitest's and pytest's own summary lines, and the one line `npm test` ends with:
 * `N passed, N failed` (`, N skipped` when any).
 */

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;?]*[ -/]*[@-~]/g;

/** @param {string} text */
export function stripAnsi(text) {
  return text.replace(ANSI, '');
}

/**
 * @typedef {{ passed: number, failed: number, skipped: number, found: boolean, notes: string[] }} Counts
 */

/** @returns {Counts} */
function empty() {
  return { passed: 0, failed: 0, skipped: 0, found: false, notes: [] };
}

/**
 * vitest's "Tests  3 failed | 120 passed | 2 skipped (125)" line (the last one in the output), plus
 * its "Failed Suites N" heading: test files that failed before their tests ran (an import error),
 * whose tests appear in no count. todo counts as skipped.
 * @param {string} output
 * @returns {Counts & { suitesFailed: number, filesFailed: number }}
 */
export function parseVitestSummary(output) {
  const counts = { ...empty(), suitesFailed: 0, filesFailed: 0 };
  const lines = stripAnsi(output).split(/\r?\n/);
  const testsLine = lines.filter((l) => /^\s*Tests\s{2,}/.test(l)).pop();
  const filesLine = lines.filter((l) => /^\s*Test Files\s{2,}/.test(l)).pop();
  if (testsLine) {
    counts.found = true;
    for (const [, n, word] of testsLine.matchAll(/(\d+)\s+(passed|failed|skipped|todo)\b/g)) {
      if (word === 'passed') counts.passed += Number(n);
      else if (word === 'failed') counts.failed += Number(n);
      else counts.skipped += Number(n);
    }
  }
  if (filesLine) {
    const m = /(\d+)\s+failed\b/.exec(filesLine);
    if (m) counts.filesFailed = Number(m[1]);
  }
  const suites = lines.filter((l) => /\bFailed Suites \d+\b/.test(l)).pop();
  if (suites) {
    const m = /Failed Suites (\d+)/.exec(suites);
    if (m) counts.suitesFailed = Number(m[1]);
  }
  return counts;
}

/**
 * pytest's closing line: "5 passed, 1 skipped in 0.12s", "== 1 failed, 2 passed, 1 error in 3.2s ==",
 * "no tests ran in 0.01s". xpassed counts as passed, xfailed as skipped, errors as failed.
 * @param {string} output
 * @returns {Counts}
 */
export function parsePytestSummary(output) {
  const counts = empty();
  const lines = stripAnsi(output).split(/\r?\n/);
  const line = lines
    .filter(
      (l) =>
        /\bin \d+(\.\d+)?s\b/.test(l) && /(\d+ (passed|failed|skipped|errors?|xfailed|xpassed|deselected|warnings?)|no tests ran)/.test(l),
    )
    .pop();
  if (!line) return counts;
  counts.found = true;
  for (const [, n, word] of line.matchAll(/(\d+) (passed|failed|skipped|errors?|xfailed|xpassed)\b/g)) {
    const k = Number(n);
    if (word === 'passed' || word === 'xpassed') counts.passed += k;
    else if (word === 'failed' || word.startsWith('error')) counts.failed += k;
    else counts.skipped += k;
  }
  return counts;
}

/** @type {Partial<Record<number, string>>} */
const PYTEST_EXIT = {
  2: 'interrupted',
  3: 'internal error',
  4: 'usage error',
  5: 'no tests were collected',
};

/**
 * One runner's counts, made honest against its exit status: a non-zero exit with no failure counted
 * (an import error, no tests collected, a crash) counts as one failure, with a note saying why.
 * @param {'vitest' | 'pytest'} runner
 * @param {number | null} exitCode null when the runner could not start
 * @param {string} output
 * @returns {Counts}
 */
export function summarizeRun(runner, exitCode, output) {
  const vitest = runner === 'vitest' ? parseVitestSummary(output) : null;
  const counts = vitest ?? parsePytestSummary(output);
  if (vitest) {
    const broken = vitest.suitesFailed || (vitest.failed === 0 ? vitest.filesFailed : 0);
    if (broken > 0) {
      counts.failed += broken;
      counts.notes.push(`${broken} test file(s) failed before their tests ran`);
    }
  }
  if (exitCode !== 0 && counts.failed === 0) {
    counts.failed = 1;
    const why =
      exitCode === null
        ? 'could not start'
        : runner === 'pytest' && PYTEST_EXIT[exitCode]
          ? `${PYTEST_EXIT[exitCode]} (exit status ${exitCode})`
          : `exited with status ${exitCode} without a failing test in its summary`;
    counts.notes.push(`${runner} ${why}: counted as 1 failure`);
  }
  return counts;
}

/**
 * Sums runners' counts into the final line: "N passed, N failed" plus ", N skipped" when any.
 * @param {Pick<Counts, 'passed' | 'failed' | 'skipped'>[]} runs
 */
export function formatSummary(runs) {
  const total = runs.reduce((t, c) => ({ passed: t.passed + c.passed, failed: t.failed + c.failed, skipped: t.skipped + c.skipped }), {
    passed: 0,
    failed: 0,
    skipped: 0,
  });
  return `${total.passed} passed, ${total.failed} failed${total.skipped ? `, ${total.skipped} skipped` : ''}`;
}

/**
 * Under CI=true a skip is a test that did not run: each skipped test counts as a failure, with a note
 * (the runners print why). Windows keeps its documented platform skips.
 * @param {Counts} counts
 * @returns {Counts}
 */
export function failSkipsUnderCI(counts, env = process.env, platform = process.platform) {
  const ci = ['true', '1'].includes((env.CI ?? '').toLowerCase());
  if (!ci || platform === 'win32' || counts.skipped === 0) return counts;
  counts.notes.push(`${counts.skipped} skipped under CI=true, counted as failures (a skip is a test that did not run; see SKIPPED above)`);
  counts.failed += counts.skipped;
  return counts;
}
