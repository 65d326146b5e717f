#!/usr/bin/env node
/**
 * `npm run lint [-- --fix]`: every static check, in order of speed:
 *   Biome   lint + format of the TypeScript and the page's JavaScript (biome.jsonc)
 *   ruff    lint + format of the Python ([tool.ruff] in pose-service/pyproject.toml, ruff 0.16.9:
 *           the set-up's native ruff where pip installed it, else its WebAssembly build from npm)
 *   tsc     types of everything TypeScript, tests and scripts included (tsconfig.check.json)
 *   pyright types of posepool_worker, against the workers' interpreter ([tool.pyright])
 * Ends with one line per check; exits non-zero when any found a problem. `npm test` runs it first.
 * `--fix` lets Biome and ruff rewrite what they can (formatting, safe fixes).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parse as parseToml } from 'smol-toml';
import { ROOT, recordedPython, SERVICE_DIR, seconds } from './lib/repo.mjs';

/** The ruff both routes use: pip's `ruff==` pin (pose-service/requirements-dev.txt) and the npm build match it. */
const RUFF_VERSION = '0.16.9';
const PYPROJECT = path.join(SERVICE_DIR, 'pyproject.toml');
/**
 * @param {string} pkg
 * @param {string} file
 */
const bin = (pkg, file) => path.join(ROOT, 'node_modules', pkg, file);

/**
 * @typedef {{ name: string, ok: boolean, detail: string, ms: number }} CheckResult
 */

/**
 * Runs a command with its output passed through.
 * @param {string} command
 * @param {string[]} args
 * @returns {number} exit code (127 when it could not start)
 */
function run(command, args) {
  const r = spawnSync(command, args, { cwd: ROOT, stdio: 'inherit' });
  if (r.error) {
    console.error(`lint: could not run ${command}: ${r.error.message}`);
    return 127;
  }
  return r.status ?? 1;
}

/**
 * The Python files the checks cover: everything outside virtual environments and caches.
 * @param {string} dir
 * @returns {string[]} paths relative to ROOT
 */
function pythonFiles(dir = ROOT) {
  const skip = new Set(['node_modules', 'dist', '.git', '.venv', '__pycache__', '.pytest_cache', '.ruff_cache', 'bench-results']);
  /** @type {string[]} */
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (skip.has(entry.name) || entry.name.startsWith('.venv')) continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...pythonFiles(full));
    else if (entry.name.endsWith('.py')) out.push(path.relative(ROOT, full));
  }
  return out.sort();
}

/**
 * The native ruff the set-up installed next to the workers' interpreter, when its version is the pinned one.
 * @returns {string[] | null} the command prefix (`python -m ruff`)
 */
function nativeRuff() {
  const chosen = recordedPython();
  if (!chosen) return null;
  const r = spawnSync(chosen.python, ['-m', 'ruff', '--version'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() === `ruff ${RUFF_VERSION}` ? [chosen.python, '-m', 'ruff'] : null;
}

/**
 * ruff's WebAssembly build: the same checks, file by file, with the [tool.ruff] table as its settings.
 * @param {string[]} files relative to the repository root (or absolute)
 * @param {boolean} fix
 * @returns {Promise<number>} problems left
 */
export async function wasmRuff(files, fix) {
  const { Workspace, PositionEncoding } = await import('@astral-sh/ruff-wasm-nodejs');
  if (Workspace.version() !== RUFF_VERSION) throw new Error(`@astral-sh/ruff-wasm-nodejs is ${Workspace.version()}, not ${RUFF_VERSION}`);
  const settings = /** @type {{ tool?: { ruff?: object } }} */ (parseToml(readFileSync(PYPROJECT, 'utf8'))).tool?.ruff ?? {};
  const workspace = new Workspace(settings, PositionEncoding.Utf16);
  let problems = 0;
  for (const file of files) {
    const source = readFileSync(path.resolve(ROOT, file), 'utf8');
    const formatted = workspace.format(source);
    if (formatted !== source) {
      if (fix) writeFileSync(path.resolve(ROOT, file), formatted);
      else {
        problems++;
        console.log(`${file}: not formatted (npm run lint -- --fix)`);
      }
    }
    const diagnostics = /** @type {import('@astral-sh/ruff-wasm-nodejs').Diagnostic[]} */ (workspace.check(fix ? formatted : source));
    for (const d of diagnostics) {
      problems++;
      console.log(`${file}:${d.start_location.row}:${d.start_location.column}: ${d.code ?? 'error'} ${d.message}`);
    }
  }
  if (fix && problems > 0)
    console.log(
      `lint: ruff's own fixes need the native ruff (${recordedPython()?.python ?? 'python'} -m pip install ruff==${RUFF_VERSION})`,
    );
  return problems;
}

/**
 * @param {boolean} fix
 * @returns {Promise<CheckResult>}
 */
async function ruff(fix) {
  const t0 = Date.now();
  const files = pythonFiles();
  const native = nativeRuff();
  if (native) {
    const [cmd, ...pre] = native;
    const config = ['--config', PYPROJECT];
    const format = run(cmd, [...pre, 'format', ...config, ...(fix ? [] : ['--check']), ...files]);
    const check = run(cmd, [...pre, 'check', ...config, ...(fix ? ['--fix'] : []), ...files]);
    const ok = format === 0 && check === 0;
    return {
      name: 'ruff',
      ok,
      detail: `${files.length} files, native ruff ${RUFF_VERSION}${ok ? '' : ': problems above'}`,
      ms: Date.now() - t0,
    };
  }
  try {
    const problems = await wasmRuff(files, fix);
    return {
      name: 'ruff',
      ok: problems === 0,
      detail: `${files.length} files, ruff ${RUFF_VERSION} (WebAssembly)${problems ? `: ${problems} problems` : ''}`,
      ms: Date.now() - t0,
    };
  } catch (err) {
    return { name: 'ruff', ok: false, detail: `could not run: ${err instanceof Error ? err.message : String(err)}`, ms: Date.now() - t0 };
  }
}

/**
 * @param {boolean} fix
 * @returns {CheckResult}
 */
function biome(fix) {
  const t0 = Date.now();
  const code = run(process.execPath, [bin('@biomejs/biome', 'bin/biome'), fix ? 'check' : 'ci', ...(fix ? ['--write'] : []), '.']);
  return { name: 'biome', ok: code === 0, detail: code === 0 ? 'TypeScript and JavaScript' : 'problems above', ms: Date.now() - t0 };
}

/** @returns {CheckResult} */
function tsc() {
  const t0 = Date.now();
  const code = run(process.execPath, [bin('typescript', 'bin/tsc'), '-p', 'tsconfig.check.json']);
  return { name: 'tsc', ok: code === 0, detail: code === 0 ? 'tests and scripts included' : 'type errors above', ms: Date.now() - t0 };
}

/** @returns {CheckResult} */
function pyright() {
  const t0 = Date.now();
  const chosen = recordedPython();
  if (!chosen) {
    return { name: 'pyright', ok: false, detail: "no workers' interpreter recorded: run `npm run setup` (or set POSE_PYTHON)", ms: 0 };
  }
  const code = run(process.execPath, [bin('pyright', 'index.js'), '-p', PYPROJECT, '--pythonpath', chosen.python]);
  return {
    name: 'pyright',
    ok: code === 0,
    detail: `against ${chosen.python}${code === 0 ? '' : ': type errors above'}`,
    ms: Date.now() - t0,
  };
}

/**
 * @param {{ fix?: boolean }} [options]
 * @returns {Promise<CheckResult[]>}
 */
export async function lint({ fix = false } = {}) {
  /** @type {CheckResult[]} */
  const results = [];
  console.log('\n== lint: biome ==');
  results.push(biome(fix));
  console.log('\n== lint: ruff ==');
  results.push(await ruff(fix));
  console.log('\n== lint: tsc ==');
  results.push(tsc());
  console.log('\n== lint: pyright ==');
  results.push(pyright());
  return results;
}

/**
 * "lint: biome ok (1.2 s), ruff ok …" lines.
 * @param {CheckResult[]} results
 */
export function formatLint(results) {
  return results.map((r) => `lint: ${r.name} ${r.ok ? 'ok' : 'FAILED'} (${seconds(r.ms)}) ${r.detail}`).join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const argv = process.argv.slice(2);
  const unknown = argv.filter((a) => a !== '--fix');
  if (unknown.length) {
    console.error(`lint: unknown option ${unknown.join(' ')} (use --fix)`);
    process.exit(64);
  }
  const results = await lint({ fix: argv.includes('--fix') });
  console.log(`\n${formatLint(results)}`);
  process.exit(results.every((r) => r.ok) ? 0 : 1);
}
