/** apt-get for the set-up: usable only on Debian/Ubuntu as root or with password-less sudo. */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';

/**
 * The command prefix that runs apt-get (`[]` as root, `['sudo', '-n']`), or null when apt is not usable.
 * @returns {string[] | null}
 */
export function aptPrefix() {
  if (process.platform !== 'linux') return null;
  if (!['/usr/bin/apt-get', '/bin/apt-get'].some((p) => existsSync(p))) return null;
  if (process.getuid?.() === 0) return [];
  const sudo = spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore' });
  return sudo.status === 0 ? ['sudo', '-n'] : null;
}

/**
 * @param {string[]} prefix
 * @param {string[]} args
 */
function run(prefix, args) {
  const [cmd, ...rest] = [...prefix, ...args];
  const r = spawnSync(cmd, rest, { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  return r.status === 0;
}

/**
 * apt-get install -y PKGS (apt-get update first when the package lists are empty or lack one).
 * @param {string[]} prefix from aptPrefix()
 * @param {string[]} packages
 * @param {(message: string) => void} [log]
 */
export function aptInstall(prefix, packages, log = console.log) {
  const lists = existsSync('/var/lib/apt/lists')
    ? readdirSync('/var/lib/apt/lists').filter((n) => n.endsWith('_Packages') || n.includes('Packages'))
    : [];
  const known = packages.every((p) => spawnSync('apt-cache', ['show', p], { stdio: 'ignore' }).status === 0);
  if (lists.length === 0 || !known) {
    log('apt-get update');
    if (!run(prefix, ['apt-get', 'update', '-q'])) return false;
  }
  log(`apt-get install -y ${packages.join(' ')}`);
  return run(prefix, ['apt-get', 'install', '-y', '-q', '--no-install-recommends', ...packages]);
}
