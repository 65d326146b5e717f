/**
 * Is there an ffmpeg and an ffprobe the server would find? The set-up asks this before the build, so it
 * cannot import server/runtime/ffmpeg-path.ts; it follows the same order (FFMPEG_PATH, ffmpeg-static,
 * PATH; FFPROBE_PATH, next to ffmpeg, ffprobe-static, PATH), and prepare.mjs confirms with the server's
 * own resolution after the build.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);

/** @param {string} file */
function executable(file) {
  try {
    if (!statSync(file).isFile()) return false;
    if (process.platform !== 'win32') accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * @param {string} name
 * @param {NodeJS.ProcessEnv} env
 */
function onPath(name, env) {
  const exts = process.platform === 'win32' ? ['', ...(env.PATHEXT ?? '.EXE;.CMD;.BAT').split(';')] : [''];
  for (const dir of (env.PATH ?? env.Path ?? '').split(path.delimiter)) {
    for (const ext of exts) if (dir && executable(path.join(dir, name + ext))) return path.join(dir, name + ext);
  }
  return null;
}

/**
 * @param {string} pkg
 * @returns {string | null}
 */
function packageBinary(pkg) {
  if (!['linux', 'darwin', 'win32'].includes(process.platform)) return null;
  try {
    const exported = require(pkg);
    const file = typeof exported === 'string' ? exported : exported?.path;
    return typeof file === 'string' && executable(file) ? file : null;
  } catch {
    return null;
  }
}

/** @returns {{ ffmpeg: string | null, ffprobe: string | null }} */
export function findMediaTools(env = process.env) {
  const ffmpeg = env.FFMPEG_PATH?.trim() || packageBinary('ffmpeg-static') || onPath('ffmpeg', env);
  const sibling = ffmpeg ? path.join(path.dirname(ffmpeg), process.platform === 'win32' ? 'ffprobe.exe' : 'ffprobe') : null;
  const ffprobe =
    env.FFPROBE_PATH?.trim() ||
    (sibling && executable(sibling) ? sibling : null) ||
    packageBinary('ffprobe-static') ||
    onPath('ffprobe', env);
  return { ffmpeg: ffmpeg && executable(ffmpeg) ? ffmpeg : null, ffprobe: ffprobe && executable(ffprobe) ? ffprobe : null };
}
