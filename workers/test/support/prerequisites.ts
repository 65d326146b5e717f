/**
 * What the tests that prove the mission need, and what happens when it is missing: the interpreter
 * that runs real workers (the one the set-up recorded, however it was made) and a skip that is a
 * failure under CI (a skip is a test that did not run).
 */
import { execFileSync } from 'node:child_process';
import { describe, it } from 'vitest';
import { workerPython } from '../../../server/runtime/python-choice.js';

export const isCI = ['true', '1'].includes((process.env.CI ?? '').toLowerCase());

/** The interpreter tests run real workers with: POSE_TEST_PYTHON, else the workers' own (POSE_PYTHON, else the set-up's record). */
export function testPython(): string | null {
  const explicit = process.env.POSE_TEST_PYTHON?.trim();
  if (explicit) return explicit;
  try {
    return workerPython()?.python ?? null;
  } catch {
    return null;
  }
}

let realWorkersVerdict: string | null | undefined;

/** Why real workers (numpy, cv2, torch) cannot run here, or null when they can. Checked once per test file. */
export function whyNoRealWorkers(): string | null {
  if (realWorkersVerdict !== undefined) return realWorkersVerdict;
  const python = testPython();
  if (!python) {
    realWorkersVerdict = "no workers' interpreter: the set-up has not recorded one (`npm run setup`) and POSE_PYTHON is unset";
    return realWorkersVerdict;
  }
  try {
    execFileSync(python, ['-c', 'import numpy, cv2, torch'], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 120_000 });
    realWorkersVerdict = null;
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    const last = String(e.stderr ?? e.message)
      .trim()
      .split('\n')
      .pop();
    realWorkersVerdict = `${python} cannot import numpy, cv2 and torch (${last}): run \`npm run setup\``;
  }
  return realWorkersVerdict;
}

/** The interpreter for real workers; throws (failing the test that asks) where there is none. */
export function realWorkersPython(): string {
  const why = whyNoRealWorkers();
  if (why) throw new Error(why);
  return testPython()!;
}

/**
 * describe(name, body) when nothing is missing. When `missing` says what is: under CI=true one failing
 * test whose message is that one line; elsewhere a skip announced with the same line.
 */
export function describeIfReady(name: string, missing: string | null, body: () => void): void {
  if (!missing) {
    describe(name, body);
    return;
  }
  const line = `"${name}" did not run: ${missing}`;
  if (isCI) {
    describe(name, () => {
      it('has what it needs (under CI=true a skip is a failure)', () => {
        throw new Error(line);
      });
    });
    return;
  }
  console.warn(`SKIPPED ${line}`);
  describe.skip(name, body);
}
