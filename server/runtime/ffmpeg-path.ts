/**
 * Which ffmpeg and ffprobe the server runs, and why (`source`).
 *
 *   ffmpeg:  FFMPEG_PATH, else ffmpeg-static's binary (when its download ran), else `ffmpeg` on PATH
 *   ffprobe: FFPROBE_PATH, else the ffprobe next to the chosen ffmpeg, else ffprobe-static's binary,
 *            else `ffprobe` on PATH
 *
 * A variable that is set must name an executable file: it is never skipped silently.
 */

import { spawnSync } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

export type FfmpegSource = 'FFMPEG_PATH' | 'ffmpeg-static' | 'PATH';
export type FfprobeSource = 'FFPROBE_PATH' | 'next to ffmpeg' | 'ffprobe-static' | 'PATH';

export interface ResolvedTool<S extends string> {
  path: string;
  source: S;
}

export interface ResolvedMediaTools {
  ffmpeg: ResolvedTool<FfmpegSource>;
  ffprobe: ResolvedTool<FfprobeSource>;
}

export type MediaToolErrorCode = 'FFMPEG_NOT_FOUND' | 'FFPROBE_NOT_FOUND';

export class MediaToolNotFoundError extends Error {
  constructor(
    readonly code: MediaToolErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'MediaToolNotFoundError';
  }
}

export interface ResolveOptions {
  env?: NodeJS.ProcessEnv;
  platform?: NodeJS.Platform;
  /** The binary path an npm package reports (ffmpeg-static, ffprobe-static), or null if not installed. */
  packageBinary?: (pkg: 'ffmpeg-static' | 'ffprobe-static') => string | null;
}

const require = createRequire(import.meta.url);

/** ffmpeg-static exports the path; ffprobe-static exports { path }. Null when absent or unsupported. */
export function npmPackageBinary(pkg: 'ffmpeg-static' | 'ffprobe-static'): string | null {
  // ffprobe-static calls process.exit on platforms it does not know: only ask it on those it does.
  if (!['linux', 'darwin', 'win32'].includes(process.platform)) return null;
  try {
    const exported: unknown = require(pkg);
    if (typeof exported === 'string') return exported;
    if (exported && typeof (exported as { path?: unknown }).path === 'string') return (exported as { path: string }).path;
    return null;
  } catch {
    return null;
  }
}

export function isExecutable(file: string, platform: NodeJS.Platform = process.platform): boolean {
  try {
    if (!statSync(file).isFile()) return false;
    if (platform !== 'win32') accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** `which`: the first executable `name` in PATH (with PATHEXT on Windows), or null. */
export function findOnPath(
  name: string,
  env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
): string | null {
  const pathVar = env.PATH ?? env.Path ?? '';
  const sep = platform === 'win32' ? ';' : ':';
  const exts = platform === 'win32' ? ['', ...(env.PATHEXT ?? '.EXE;.CMD;.BAT;.COM').split(';').filter(Boolean)] : [''];
  for (const dir of pathVar.split(sep)) {
    if (!dir) continue;
    for (const ext of exts) {
      const candidate = path.join(dir, name + ext);
      if (isExecutable(candidate, platform)) return candidate;
    }
  }
  return null;
}

function fromVariable(env: NodeJS.ProcessEnv, variable: 'FFMPEG_PATH' | 'FFPROBE_PATH', platform: NodeJS.Platform): string | null {
  const value = env[variable]?.trim();
  if (!value) return null;
  if (!isExecutable(value, platform)) {
    throw new MediaToolNotFoundError(
      variable === 'FFMPEG_PATH' ? 'FFMPEG_NOT_FOUND' : 'FFPROBE_NOT_FOUND',
      `${variable}=${value} is not an executable file`,
    );
  }
  return value;
}

const INSTALL_HINT =
  'install ffmpeg (Debian/Ubuntu: apt-get install ffmpeg; macOS: brew install ffmpeg; Windows: winget install Gyan.FFmpeg)';

export function resolveFfmpeg(opts: ResolveOptions = {}): ResolvedTool<FfmpegSource> {
  const env = opts.env ?? process.env;
  const platform = opts.platform ?? process.platform;
  const packageBinary = opts.packageBinary ?? npmPackageBinary;

  const fromEnv = fromVariable(env, 'FFMPEG_PATH', platform);
  if (fromEnv) return { path: fromEnv, source: 'FFMPEG_PATH' };
  const fromPackage = packageBinary('ffmpeg-static');
  if (fromPackage && isExecutable(fromPackage, platform)) return { path: fromPackage, source: 'ffmpeg-static' };
  const fromPath = findOnPath('ffmpeg', env, platform);
  if (fromPath) return { path: fromPath, source: 'PATH' };
  throw new MediaToolNotFoundError(
    'FFMPEG_NOT_FOUND',
    `ffmpeg not found (FFMPEG_PATH unset, ffmpeg-static's binary ${fromPackage ? 'not downloaded' : 'not installed'}, none on PATH): ${INSTALL_HINT}, or set FFMPEG_PATH`,
  );
}

export function resolveFfprobe(ffmpegPath: string | null, opts: ResolveOptions = {}): ResolvedTool<FfprobeSource> {
  const env = opts.env ?? process.env;
  const platform = opts.platform ?? process.platform;
  const packageBinary = opts.packageBinary ?? npmPackageBinary;

  const fromEnv = fromVariable(env, 'FFPROBE_PATH', platform);
  if (fromEnv) return { path: fromEnv, source: 'FFPROBE_PATH' };
  if (ffmpegPath) {
    const sibling = path.join(path.dirname(ffmpegPath), platform === 'win32' ? 'ffprobe.exe' : 'ffprobe');
    if (isExecutable(sibling, platform)) return { path: sibling, source: 'next to ffmpeg' };
  }
  const fromPackage = packageBinary('ffprobe-static');
  if (fromPackage && isExecutable(fromPackage, platform)) return { path: fromPackage, source: 'ffprobe-static' };
  const fromPath = findOnPath('ffprobe', env, platform);
  if (fromPath) return { path: fromPath, source: 'PATH' };
  throw new MediaToolNotFoundError(
    'FFPROBE_NOT_FOUND',
    `ffprobe not found (FFPROBE_PATH unset, none next to ffmpeg, no ffprobe-static binary, none on PATH): ${INSTALL_HINT}, or set FFPROBE_PATH`,
  );
}

/** Both tools; throws MediaToolNotFoundError (with the fix in its message) when one is missing. */
export function resolveMediaTools(opts: ResolveOptions = {}): ResolvedMediaTools {
  const ffmpeg = resolveFfmpeg(opts);
  return { ffmpeg, ffprobe: resolveFfprobe(ffmpeg.path, opts) };
}

/** The first line of `TOOL -version` ("ffmpeg version 5.1.6-0+deb12u1 ..."), or null if it does not run. */
export function toolVersion(file: string, timeoutMs = 10_000): string | null {
  const r = spawnSync(file, ['-hide_banner', '-version'], { encoding: 'utf8', timeout: timeoutMs });
  if (r.status !== 0 || !r.stdout) return null;
  return r.stdout.split('\n')[0].trim() || null;
}
