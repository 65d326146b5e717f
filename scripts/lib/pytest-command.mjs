/** How `npm test` and `npm run test:py` run pytest: the workers' interpreter, in pose-service/. */
import { existsSync } from 'node:fs';
import { isPathLike, recordedPython, SERVICE_DIR } from './repo.mjs';

/**
 * @param {string[]} [extraArgs]
 * @returns {{ ok: true, python: string, source: string, args: string[], cwd: string } | { ok: false, message: string }}
 */
export function pytestCommand(extraArgs = [], env = process.env) {
  const chosen = recordedPython(env);
  if (!chosen) {
    return { ok: false, message: 'no Python interpreter recorded: run `npm run setup` (or set POSE_PYTHON)' };
  }
  if (isPathLike(chosen.python)) {
    if (!existsSync(chosen.python)) {
      const fix = chosen.source === 'POSE_PYTHON' ? 'fix POSE_PYTHON' : 'run `npm run setup` again';
      return { ok: false, message: `${chosen.python} (${chosen.source}) does not exist: ${fix}` };
    }
  }
  return { ok: true, python: chosen.python, source: chosen.source, args: ['-m', 'pytest', '-q', ...extraArgs], cwd: SERVICE_DIR };
}
