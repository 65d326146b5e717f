#!/usr/bin/env node
/**
 * `npm run test:py [-- PYTEST ARGS]`: the pose-service's pytest suite, run with the interpreter the
 * workers use (POSE_PYTHON, else the set-up's record), in pose-service/. Exits with pytest's status
 * (5 = nothing collected, which is a failure here too).
 */
import { spawnSync } from 'node:child_process';
import { pytestCommand } from './lib/pytest-command.mjs';

const cmd = pytestCommand(process.argv.slice(2));
if (!cmd.ok) {
  console.error(`test:py: ${cmd.message}`);
  process.exit(1);
}
console.log(`test:py: ${cmd.python} ${cmd.args.join(' ')} (in pose-service/, interpreter from ${cmd.source})`);
const r = spawnSync(cmd.python, cmd.args, { cwd: cmd.cwd, stdio: 'inherit' });
if (r.error) {
  console.error(`test:py: could not run ${cmd.python}: ${r.error.message}`);
  process.exit(1);
}
if (r.status === 5) console.error('test:py: pytest collected no tests (exit status 5)');
process.exit(r.status ?? 1);
