/**
 * Test support: a Python virtual environment that has Debian's numpy and torch but not cv2, the
 * founding bug's interpreter. `addCv2()` then makes cv2 importable in that same interpreter.
 *
 * Built from /usr/bin/python3 with `-m venv --without-pip`; its site-packages holds one .pth file
 * pointing at a folder of symlinks to every entry of Debian's dist-packages except cv2*.
 * Linux/Debian only: `isCv2LessVenvSupported()` says whether this machine can build it.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const SYSTEM_PYTHON = '/usr/bin/python3';
export const DIST_PACKAGES = '/usr/lib/python3/dist-packages';

export interface Cv2LessVenv {
  /** The venv's interpreter (what the workers run). */
  python: string;
  dir: string;
  /** Makes cv2 importable in this same venv. */
  addCv2(): Promise<void>;
}

const isCv2 = (name: string) => name === 'cv2' || name.startsWith('cv2.') || name.startsWith('cv2-');

export function isCv2LessVenvSupported(): boolean {
  return (
    process.platform === 'linux' &&
    existsSync(SYSTEM_PYTHON) &&
    existsSync(DIST_PACKAGES) &&
    existsSync(join(DIST_PACKAGES, 'numpy')) &&
    existsSync(join(DIST_PACKAGES, 'torch'))
  );
}

export async function buildCv2LessVenv(dir: string): Promise<Cv2LessVenv> {
  await run(SYSTEM_PYTHON, ['-m', 'venv', '--without-pip', dir]);
  const libDir = join(dir, 'lib');
  const pyDir = (await readdir(libDir)).find((n) => n.startsWith('python3'));
  if (!pyDir) throw new Error(`no lib/python3.* in ${dir}`);
  const sitePackages = join(libDir, pyDir, 'site-packages');
  const links = join(dir, 'system-packages');
  await mkdir(links, { recursive: true });
  const entries = (await readdir(DIST_PACKAGES)).filter((n) => !n.endsWith('.pth'));
  for (const name of entries.filter((n) => !isCv2(n))) {
    await symlink(join(DIST_PACKAGES, name), join(links, name));
  }
  await writeFile(join(sitePackages, '_debian.pth'), `${links}\n`);
  return {
    python: join(dir, 'bin', 'python'),
    dir,
    async addCv2() {
      for (const name of entries.filter(isCv2)) {
        if (!existsSync(join(links, name))) await symlink(join(DIST_PACKAGES, name), join(links, name));
      }
    },
  };
}
