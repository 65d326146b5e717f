#!/usr/bin/env node
/**
 * `npm run eval [-- OPTIONS]`: the pose fidelity report (pose-service/eval/fidelity.py), run with the interpreter
 * the workers use (POSE_PYTHON, else the set-up's record), from the repository root. Without --json / --markdown it
 * writes bench-results/eval-latest.{json,md} (gitignored). Options: see `npm run eval -- --help`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { isPathLike, ROOT, recordedPython, SERVICE_DIR } from './lib/repo.mjs';

const chosen = recordedPython();
if (!chosen) {
  console.error('eval: no Python interpreter recorded: run `npm run setup` (or set POSE_PYTHON)');
  process.exit(1);
}
if (isPathLike(chosen.python) && !existsSync(chosen.python)) {
  const fix = chosen.source === 'POSE_PYTHON' ? 'fix POSE_PYTHON' : 'run `npm run setup` again';
  console.error(`eval: ${chosen.python} (${chosen.source}) does not exist: ${fix}`);
  process.exit(1);
}

const args = process.argv.slice(2);
const help = args.includes('--help') || args.includes('-h');
if (!help) {
  const results = path.join(ROOT, 'bench-results');
  mkdirSync(results, { recursive: true });
  if (!args.includes('--json')) args.push('--json', path.join(results, 'eval-latest.json'));
  if (!args.includes('--markdown')) args.push('--markdown', path.join(results, 'eval-latest.md'));
}
const script = path.join(SERVICE_DIR, 'eval', 'fidelity.py');
console.error(`eval: ${chosen.python} ${path.relative(ROOT, script)} (interpreter from ${chosen.source})`);
const r = spawnSync(chosen.python, [script, ...args], {
  cwd: ROOT,
  stdio: 'inherit',
  env: { ...process.env, PYTHONUNBUFFERED: '1' },
});
if (r.error) {
  console.error(`eval: could not run ${chosen.python}: ${r.error.message}`);
  process.exit(1);
}
process.exit(r.status ?? 1);
