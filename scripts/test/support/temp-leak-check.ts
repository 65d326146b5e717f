/**
 * vitest globalSetup: the tests clean up after themselves. Entries of the OS temp folder named like
 * the project's (posepool-*, e2e-scratch-*) that the run created and left behind fail the run,
 * named, at teardown.
 */
import { readdirSync } from 'node:fs';
import os from 'node:os';

const OURS = /^(posepool-|e2e-scratch-)/;
const ours = () => new Set(readdirSync(os.tmpdir()).filter((n) => OURS.test(n)));

export default function setup(): () => void {
  const before = ours();
  return () => {
    const left = [...ours()].filter((n) => !before.has(n));
    if (left.length) {
      throw new Error(`the tests left ${left.length} entr${left.length === 1 ? 'y' : 'ies'} in ${os.tmpdir()}: ${left.sort().join(', ')}`);
    }
  };
}
