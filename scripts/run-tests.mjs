#!/usr/bin/env node
/**
 * `npm test`: the static checks (scripts/lint.mjs: Biome, ruff, tsc, pyright; seconds), then every
 * test, TypeScript (vitest) then Python (pytest with the workers' interpreter), with their output
 * streamed, ending with the lint lines and one line: `N passed, N failed` (`, N skipped` when any), the
 * sum of both. Exits non-zero when a check or a test failed, or when pytest collected nothing.
 * `npm pretest` (scripts/prepare.mjs) has done the set-up and the build before this runs.
 *
 *   node scripts/run-tests.mjs [--ts-only | --py-only] [--no-lint]
 */
import path from 'node:path';
import { pytestCommand } from './lib/pytest-command.mjs';
import { ROOT } from './lib/repo.mjs';
import { streamRun } from './lib/stream-run.mjs';
import { failSkipsUnderCI, formatSummary, summarizeRun } from './lib/test-summary.mjs';
import { formatLint, lint } from './lint.mjs';

const argv = process.argv.slice(2);
const runTs = !argv.includes('--py-only');
const runPy = !argv.includes('--ts-only');
const runLint = !argv.includes('--no-lint');

const env = { ...process.env };
if (process.stdout.isTTY && !env.NO_COLOR) env.FORCE_COLOR ??= '1';

const runs = [];
const lines = [];
// A failed check does not stop the tests: one run tells everything that needs fixing.
const checks = runLint ? await lint() : [];
if (checks.length) lines.push(formatLint(checks));

if (runTs) {
  console.log('\n== vitest (TypeScript) ==');
  const vitest = path.join(ROOT, 'node_modules', 'vitest', 'vitest.mjs');
  const r = await streamRun(process.execPath, [vitest, 'run'], { cwd: ROOT, env });
  if (r.error) console.error(`test: could not run vitest: ${r.error.message} (run \`npm install\`)`);
  const counts = failSkipsUnderCI(summarizeRun('vitest', r.code, r.output));
  runs.push(counts);
  lines.push(`vitest: ${formatSummary([counts])}${counts.notes.length ? ` (${counts.notes.join('; ')})` : ''}`);
}

if (runPy) {
  console.log('\n== pytest (pose-service) ==');
  const cmd = pytestCommand();
  let counts;
  if (!cmd.ok) {
    console.error(`test: pytest: ${cmd.message}`);
    counts = summarizeRun('pytest', null, '');
  } else {
    console.log(`${cmd.python} ${cmd.args.join(' ')}  (in pose-service/, interpreter from ${cmd.source})`);
    const r = await streamRun(cmd.python, cmd.args, { cwd: cmd.cwd, env });
    if (r.error) console.error(`test: could not run ${cmd.python}: ${r.error.message}`);
    counts = summarizeRun('pytest', r.code, r.output); // conftest.py fails its own skips under CI ("platform:" ones excepted)
  }
  runs.push(counts);
  lines.push(`pytest: ${formatSummary([counts])}${counts.notes.length ? ` (${counts.notes.join('; ')})` : ''}`);
}

console.log('');
for (const line of lines) console.log(line);
console.log(formatSummary(runs));
process.exit(runs.some((c) => c.failed > 0) || checks.some((c) => !c.ok) ? 1 : 0);
