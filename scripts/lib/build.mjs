/**
 * The TypeScript build (tsc -p tsconfig.json into dist/), skipped when dist is newer than every source.
 * Also copies the JSON files the compiled code reads at run time (protocol/protocol.json), which tsc
 * does not emit because they are loaded with require(), not imported.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './repo.mjs';

export const DIST = path.join(ROOT, 'dist');
export const STAMP = path.join(DIST, '.build-stamp');
const SOURCE_DIRS = ['server', 'workers', 'protocol', 'scripts'];
/** Run-time data files copied next to the compiled code, relative to the root. */
export const RUNTIME_ASSETS = ['protocol/protocol.json'];

/** Files whose change needs a rebuild: compiled .ts (tests excluded, as in tsconfig) and the copied assets. */
export function buildInputs(root = ROOT) {
  const files = [path.join(root, 'tsconfig.json'), ...RUNTIME_ASSETS.map((a) => path.join(root, a))];
  /** @param {string} dir */
  const walk = (dir) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const full = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name !== 'test' && e.name !== 'node_modules' && !e.name.startsWith('.')) walk(full);
      } else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') && !e.name.endsWith('.d.ts')) {
        files.push(full);
      }
    }
  };
  for (const dir of SOURCE_DIRS) walk(path.join(root, dir));
  return files;
}

/** Why a build is needed, or null when dist is up to date. */
export function staleReason(root = ROOT) {
  const stamp = path.join(root, 'dist', '.build-stamp');
  if (!existsSync(stamp)) return 'no build yet';
  const built = statSync(stamp).mtimeMs;
  for (const file of buildInputs(root)) {
    try {
      if (statSync(file).mtimeMs > built) return `${path.relative(root, file)} changed`;
    } catch {
      /* a listed asset that does not exist yet */
    }
  }
  for (const asset of RUNTIME_ASSETS) if (!existsSync(path.join(root, 'dist', asset))) return `dist/${asset} missing`;
  return null;
}

/** Runs tsc; returns { ok, output }. Writes the stamp only after a clean build. */
export function build() {
  const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  if (!existsSync(tsc)) return { ok: false, output: 'typescript is not installed: run `npm install`' };
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(ROOT, 'tsconfig.json')], { cwd: ROOT, encoding: 'utf8' });
  for (const asset of RUNTIME_ASSETS) {
    const from = path.join(ROOT, asset);
    if (!existsSync(from)) continue;
    mkdirSync(path.dirname(path.join(DIST, asset)), { recursive: true });
    copyFileSync(from, path.join(DIST, asset));
  }
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? r.error.message : ''}`.trim();
  if (r.status !== 0) return { ok: false, output };
  writeFileSync(STAMP, `${new Date().toISOString()}\n`);
  return { ok: true, output };
}
