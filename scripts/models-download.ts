/**
 * `npm run models:download -- NAME...`: puts the official files of the named models into
 * POSE_MODELS_DIR (default pose-service/.models), verifying their checksums. Models that ship with
 * the repository (MoveNet) or need no files say so. Without network it fails within seconds.
 *
 * Exit status: 0 all done, 1 a download or check failed, 2 bad usage (unknown model).
 */
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError, REPO_ROOT, loadDotEnv } from '../server/config.js';
import { DownloadError, downloadFile, unpackTarball } from './download-file.js';
import { MODEL_SOURCES, type ModelSource, type NeededFile } from './model-sources.js';

export interface ModelsDownloadOptions {
  modelsDir: string;
  repoRoot?: string;
  sources?: Record<string, ModelSource>;
  connectTimeoutMs?: number;
  log?: (line: string) => void;
}

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

/** Fetches one model; returns true when its files are all in place afterwards. */
export async function downloadModel(name: string, opts: ModelsDownloadOptions): Promise<boolean> {
  const sources = opts.sources ?? MODEL_SOURCES;
  const log = opts.log ?? ((line: string) => console.log(line));
  const say = (line: string) => log(`${name}: ${line}`);
  const source = sources[name];
  switch (source.kind) {
    case 'none':
      say(`${source.note}: nothing to download`);
      return true;
    case 'bundled': {
      const missing = missingFiles(source, opts.repoRoot ?? REPO_ROOT);
      if (missing.length === 0) {
        say(source.note);
        return true;
      }
      say(`${source.note}, but ${missing.map((m) => m.anyOf[0]).join(', ')} is missing: run \`npm install\``);
      return false;
    }
    case 'unrecorded': {
      const missing = missingFiles(source, opts.modelsDir);
      if (missing.length === 0) {
        say(`files already in ${opts.modelsDir}`);
        return true;
      }
      say(`cannot download: ${source.note}.`);
      for (const need of missing) {
        say(`  put ${need.anyOf.join(' or ')} into ${opts.modelsDir} yourself${need.userSupplied ? ` (${need.userSupplied})` : ''}`);
      }
      return false;
    }
    case 'download': {
      if (missingFiles(source, opts.modelsDir).length === 0) {
        say(`files already in ${opts.modelsDir}`);
        return true;
      }
      say(`license: ${source.license}`);
      for (const file of source.files) {
        const archive = await downloadFile(file, {
          modelsDir: opts.modelsDir,
          connectTimeoutMs: opts.connectTimeoutMs,
          log: (line) => say(line),
        });
        if (file.unpackInto) {
          say(`unpacking ${file.dest} into ${file.unpackInto}/`);
          unpackTarball(archive, path.join(opts.modelsDir, file.unpackInto));
          if (file.removeAfterUnpack) rmSync(archive, { force: true });
        }
      }
      const missing = missingFiles(source, opts.modelsDir);
      for (const need of missing) {
        say(
          need.userSupplied
            ? `still needed: ${need.anyOf[0]}: ${need.userSupplied}`
            : `expected ${need.anyOf.join(' or ')} in ${opts.modelsDir} after the download, but it is not there`,
        );
      }
      return missing.length === 0;
    }
  }
}

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const names = argv.filter((a) => !a.startsWith('-'));
  const valid = Object.keys(MODEL_SOURCES);
  const listing = valid
    .map((n) => `  ${n.padEnd(18)} ${MODEL_SOURCES[n].kind === 'download' ? 'download' : MODEL_SOURCES[n].kind === 'unrecorded' ? 'no source recorded yet' : 'nothing to download'}`)
    .join('\n');
  if (names.length === 0 || argv.includes('--help') || argv.includes('-h')) {
    console.log(`usage: npm run models:download -- NAME...\nmodels:\n${listing}`);
    return names.length === 0 && !argv.includes('--help') && !argv.includes('-h') ? 2 : 0;
  }
  const unknown = names.filter((n) => !valid.includes(n));
  if (unknown.length) {
    console.error(`models:download: unknown model ${unknown.join(', ')}; valid names:\n${listing}`);
    return 2;
  }
  const modelsDir = modelsDirFromEnv(env);
  let ok = true;
  for (const name of names) {
    try {
      ok = (await downloadModel(name, { modelsDir })) && ok;
    } catch (err) {
      ok = false;
      if (err instanceof DownloadError) {
        const fix =
          err.code === 'NETWORK_UNREACHABLE' || err.code === 'DOWNLOAD_STALLED'
            ? ' (no network here? download the file on a machine that has it and copy it into ' + modelsDir + ')'
            : err.code === 'CHECKSUM_MISMATCH' || err.code === 'SIZE_MISMATCH'
              ? ' (the partial file was removed; run the command again)'
              : '';
        console.error(`${name}: FAILED [${err.code}] ${err.message}${fix}`);
      } else {
        console.error(`${name}: FAILED ${(err as Error).message}`);
      }
    }
  }
  return ok ? 0 : 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  loadDotEnv();
  main(process.argv.slice(2))
    .then((code) => process.exit(code))
    .catch((err) => {
      console.error(err instanceof ConfigError ? `models:download: ${err.message}` : err);
      process.exit(1);
    });
}
