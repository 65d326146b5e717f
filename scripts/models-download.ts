/**
 * `npm run models:download -- NAME...`: puts the official files of the named models into POSE_MODELS_DIR
 * (default pose-service/.models), where the workers look. Each file is downloaded to a temporary name, checked
 * (recorded size/sha256 where known, and the key manifest read by the backend's own loader with the workers'
 * Python: scripts/model-sources.ts says which for each file) and only then moved into place. Models that ship
 * with the repository (MoveNet) or need no files say so. Licensed files (SMPL) are never downloaded: the
 * command says how to get them. Without network it fails within seconds and says how to get the files by hand.
 *
 * Exit status: 0 every named model is ready, 1 a download or check failed, 2 bad usage (unknown model),
 * 3 downloads done but a licensed file the user must supply (SMPL) is still missing.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError, loadDotEnv, REPO_ROOT } from '../server/config.js';
import { DownloadError, type DownloadOptions, downloadArchive, downloadFile, removeInFlight } from './download-file.js';
import { type FileChecker, pythonFileChecker } from './model-file-check.js';
import { type DownloadFile, type FileCheck, MODEL_SOURCES, type ModelSource, type NeededFile, outputsOf } from './model-sources.js';

export interface ModelsDownloadOptions {
  modelsDir: string;
  repoRoot?: string;
  sources?: Record<string, ModelSource>;
  /** Checks files with the workers' Python (default: scripts/verify-model-files.py with the recorded interpreter). */
  checker?: FileChecker;
  connectTimeoutMs?: number;
  stallTimeoutMs?: number;
  log?: (line: string) => void;
}

/** ready: every needed file is there; needs-user-files: only licensed, user-supplied files are missing. */
export type ModelStatus = 'ready' | 'needs-user-files' | 'failed';

/** The models dir as the server reads it (POSE_MODELS_DIR, relative to the repository root). */
export function modelsDirFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  const value = env.POSE_MODELS_DIR?.trim();
  return path.resolve(REPO_ROOT, value || path.join('pose-service', '.models'));
}

/** The needed files that are missing ([] when all are there). Bundled files are under the repo root. */
export function missingFiles(source: ModelSource, baseDir: string): NeededFile[] {
  if (source.kind === 'none') return [];
  return source.needs.filter((need) => !need.anyOf.some((rel) => existsSync(path.join(baseDir, rel))));
}

/** One line per model for the usage text. */
export function describeSource(source: ModelSource): string {
  switch (source.kind) {
    case 'none':
    case 'bundled':
      return 'nothing to download';
    case 'unrecorded':
      return 'no download source recorded';
    case 'download':
      return (
        source.files
          .map((f) => {
            const checks = [f.sha256 ? 'sha256' : '', f.size !== undefined ? 'size' : '', hasManifestCheck(f) ? 'key manifest' : ''].filter(
              Boolean,
            );
            return `${f.type === 'file' ? f.dest : `${path.posix.basename(new URL(f.url).pathname)} -> ${f.members.length} files`} (checked: ${checks.join(', ')})`;
          })
          .join('; ') + (source.needs.some((n) => n.userSupplied) ? '; plus a licensed file you supply' : '')
      );
  }
}

function hasManifestCheck(file: DownloadFile): boolean {
  return file.type === 'file' ? file.check?.kind === 'checkpoint' : file.members.some((m) => m.check?.kind === 'checkpoint');
}

function checksOf(file: DownloadFile): Map<string, FileCheck> {
  const entries: [string, FileCheck | undefined][] =
    file.type === 'file' ? [[file.dest, file.check]] : file.members.map((m) => [m.dest, m.check]);
  return new Map(entries.filter((e): e is [string, FileCheck] => e[1] !== undefined));
}

/** Fetches one model's files; says what is still missing afterwards. Throws DownloadError when a download fails. */
export async function downloadModel(name: string, opts: ModelsDownloadOptions): Promise<ModelStatus> {
  const sources = opts.sources ?? MODEL_SOURCES;
  const log = opts.log ?? ((line: string) => console.log(line));
  const say = (line: string) => log(`${name}: ${line}`);
  const source = sources[name];
  switch (source.kind) {
    case 'none':
      say(`${source.note}: nothing to download`);
      return 'ready';
    case 'bundled': {
      const missing = missingFiles(source, opts.repoRoot ?? REPO_ROOT);
      if (missing.length === 0) {
        say(source.note);
        return 'ready';
      }
      say(`${source.note}, but ${missing.map((m) => m.anyOf[0]).join(', ')} is missing: run \`npm install\``);
      return 'failed';
    }
    case 'unrecorded': {
      const missing = missingFiles(source, opts.modelsDir);
      if (missing.length === 0) {
        say(`files already in ${opts.modelsDir}`);
        return 'ready';
      }
      say(`cannot download: ${source.note}.`);
      for (const need of missing) {
        say(`  put ${need.anyOf.join(' or ')} into ${opts.modelsDir} yourself${need.userSupplied ? ` (${need.userSupplied})` : ''}`);
      }
      return 'failed';
    }
    case 'download': {
      const downloadable = missingFiles(source, opts.modelsDir).filter((n) => !n.userSupplied);
      const todo = downloadable.length
        ? source.files.filter((f) => outputsOf(f).some((o) => !existsSync(path.join(opts.modelsDir, o))))
        : [];
      if (todo.length === 0) say(`downloaded files already in ${opts.modelsDir}`);
      else say(`license: ${source.license}`);
      const checker = opts.checker ?? pythonFileChecker({ repoRoot: opts.repoRoot });
      for (const file of todo) {
        const checks = checksOf(file);
        const label = file.type === 'file' ? file.dest : path.posix.basename(new URL(file.url).pathname);
        say(`${label}: verification: ${file.integrity}`);
        const dl: DownloadOptions = {
          modelsDir: opts.modelsDir,
          connectTimeoutMs: opts.connectTimeoutMs,
          stallTimeoutMs: opts.stallTimeoutMs,
          log: say,
          beforeDownload: checks.size ? () => checker.ready() : undefined,
          verify: async (staged) => {
            const toCheck = staged.flatMap((s) => {
              const check = checks.get(s.dest);
              return check ? [{ path: s.path, check, dest: s.dest }] : [];
            });
            if (!toCheck.length) return;
            const byPath = new Map(toCheck.map((t) => [t.path, t.dest]));
            const results = await checker.verify(toCheck, (p) => byPath.get(p) ?? p);
            for (const r of results) {
              const dest = byPath.get(r.file) ?? r.file;
              say(`${dest}: ${r.check ?? 'check'}: OK${r.tensors !== undefined ? ` (${r.tensors} tensors, names and shapes)` : ''}`);
            }
          },
        };
        const placed = file.type === 'file' ? [await downloadFile(file, dl)] : await downloadArchive(file, dl);
        for (const p of placed) say(`placed ${path.relative(opts.modelsDir, p)} in ${opts.modelsDir}`);
      }
      const missing = missingFiles(source, opts.modelsDir);
      for (const need of missing) {
        say(
          need.userSupplied
            ? `still needed: ${need.anyOf[0]}: ${need.userSupplied}`
            : `expected ${need.anyOf.join(' or ')} in ${opts.modelsDir} after the download, but it is not there`,
        );
      }
      if (missing.length === 0) {
        say(`ready`);
        return 'ready';
      }
      return missing.every((m) => m.userSupplied) ? 'needs-user-files' : 'failed';
    }
  }
}

/** What to do about a failed download, by error code. */
function fixFor(err: DownloadError, source: ModelSource | undefined, modelsDir: string): string {
  const manual = source?.kind === 'download' ? source.manual.replace(/POSE_MODELS_DIR/g, modelsDir) : `put the files into ${modelsDir}`;
  switch (err.code) {
    case 'NETWORK_UNREACHABLE':
    case 'DOWNLOAD_STALLED':
      return `no network here? run the command on a machine that has it and copy ${modelsDir}, or by hand: ${manual}`;
    case 'DOWNLOAD_INTERRUPTED':
      return 'nothing partial was kept; run the command again';
    case 'SIZE_MISMATCH':
    case 'CHECKSUM_MISMATCH':
      return `nothing was kept; the file served differs from the one recorded. If it happens again, get the file by hand: ${manual}`;
    case 'MANIFEST_MISMATCH':
      return 'nothing was kept: the file is not the checkpoint the backend loads';
    case 'UNPACK_FAILED':
      return 'nothing was kept: the archive is damaged or not the official one';
    case 'HTTP_ERROR':
      return `the file may have moved; get it by hand: ${manual}`;
    case 'VERIFIER_UNAVAILABLE':
      return 'nothing was downloaded';
  }
}

export interface MainDeps {
  sources?: Record<string, ModelSource>;
  checker?: FileChecker;
  connectTimeoutMs?: number;
  log?: (line: string) => void;
  error?: (line: string) => void;
}

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env, deps: MainDeps = {}): Promise<number> {
  const sources = deps.sources ?? MODEL_SOURCES;
  const log = deps.log ?? ((line: string) => console.log(line));
  const error = deps.error ?? ((line: string) => console.error(line));
  const names = argv.filter((a) => !a.startsWith('-'));
  const valid = Object.keys(sources);
  const listing = valid.map((n) => `  ${n.padEnd(18)} ${describeSource(sources[n])}`).join('\n');
  const help = argv.includes('--help') || argv.includes('-h');
  if (names.length === 0 || help) {
    log(
      `usage: npm run models:download -- NAME...\nmodels:\n${listing}\nexit status: 0 ready, 1 failed, 2 bad usage, 3 a licensed file you supply is still missing`,
    );
    return help ? 0 : 2;
  }
  const unknown = names.filter((n) => !valid.includes(n));
  if (unknown.length) {
    error(`models:download: unknown model ${unknown.join(', ')}; valid names:\n${listing}`);
    return 2;
  }
  const modelsDir = modelsDirFromEnv(env);
  const checker = deps.checker ?? pythonFileChecker({ env });
  const statuses: ModelStatus[] = [];
  for (const name of names) {
    try {
      statuses.push(await downloadModel(name, { modelsDir, sources, checker, connectTimeoutMs: deps.connectTimeoutMs, log }));
    } catch (err) {
      statuses.push('failed');
      if (err instanceof DownloadError) {
        error(`${name}: FAILED [${err.code}] ${err.message}`);
        error(`${name}: ${fixFor(err, sources[name], modelsDir)}`);
      } else {
        error(`${name}: FAILED ${(err as Error).message}`);
      }
      for (const need of missingFiles(sources[name], modelsDir).filter((n) => n.userSupplied)) {
        error(`${name}: also needed, whatever the download: ${need.anyOf[0]}: ${need.userSupplied}`);
      }
    }
  }
  return statuses.includes('failed') ? 1 : statuses.includes('needs-user-files') ? 3 : 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  loadDotEnv();
  // Ctrl-C or a kill mid-download: remove the temporary files before leaving (nothing partial remains)
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    process.once(signal, () => {
      removeInFlight();
      console.error(`models:download: ${signal}: stopped; temporary files removed`);
      process.exit(code);
    });
  }
  main(process.argv.slice(2))
    .then((code) => process.exit(code))
    .catch((err) => {
      console.error(err instanceof ConfigError ? `models:download: ${err.message}` : err);
      process.exit(1);
    });
}
