#!/usr/bin/env node
/**
 * `npm run setup`: the pose-service set-up for this platform (scripts/setup-pose-service.sh, or
 * scripts/setup-pose-service.ps1 on Windows), then a check that the server will find an ffmpeg and an
 * ffprobe (installed with apt-get where that is possible).
 *
 *   node scripts/setup.mjs [--tests] [--force]
 *     --tests  also the tests' Python modules (pytest); `npm test` passes it through prepare.mjs
 *     --force  search for an interpreter again, ignoring the recorded one
 *
 * Idempotent, and quick when already done (one import check with the recorded interpreter).
 * POSEPOOL_SETUP_NO_INSTALL=1: only look (no venv, pip or apt-get).
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { aptInstall, aptPrefix } from './lib/apt.mjs';
import { findMediaTools } from './lib/media-tools-present.mjs';
import { ROOT } from './lib/repo.mjs';

/**
 * @typedef {{ tests?: boolean, force?: boolean, noInstall?: boolean }} SetupOptions
 */

/**
 * The commands that run the pose-service set-up on `platform`, in the order to try.
 * @param {NodeJS.Platform} platform
 * @param {SetupOptions} [options]
 */
export function poseServiceSetupCommands(platform, { tests = false, force = false } = {}) {
  if (platform === 'win32') {
    const script = path.join(ROOT, 'scripts', 'setup-pose-service.ps1');
    const args = ['-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-File', script];
    if (tests) args.push('-Tests');
    if (force) args.push('-Force');
    return [
      { command: 'pwsh', args },
      { command: 'powershell.exe', args },
    ];
  }
  const args = [path.join(ROOT, 'scripts', 'setup-pose-service.sh')];
  if (tests) args.push('--tests');
  if (force) args.push('--force');
  return [{ command: 'bash', args }];
}

/**
 * Runs the pose-service set-up; returns its exit status.
 * noInstall: only look for an interpreter (no venv, pip or apt-get), as POSEPOOL_SETUP_NO_INSTALL=1 does.
 * @param {SetupOptions} [options]
 */
export function runPoseServiceSetup(options = {}) {
  const env = options.noInstall ? { ...process.env, POSEPOOL_SETUP_NO_INSTALL: '1' } : process.env;
  for (const { command, args } of poseServiceSetupCommands(process.platform, options)) {
    const r = spawnSync(command, args, { cwd: ROOT, env, stdio: ['ignore', 'inherit', 'inherit'] });
    if (r.error && 'code' in r.error && r.error.code === 'ENOENT') continue; // try the next shell (pwsh, then Windows PowerShell)
    if (r.error) {
      console.error(`setup: could not run ${command}: ${r.error.message}`);
      return 1;
    }
    return r.status ?? 1;
  }
  console.error(
    process.platform === 'win32' ? 'setup: FAILED: neither pwsh nor powershell.exe is on PATH' : 'setup: FAILED: bash is not on PATH',
  );
  return 1;
}

/**
 * Makes sure the server will find ffmpeg and ffprobe (installing with apt-get unless noInstall); returns true when it will.
 * @param {(message: string) => void} [log]
 * @param {{ noInstall?: boolean }} [options]
 */
export function ensureMediaTools(log = (m) => console.log(`setup: ${m}`), { noInstall = false } = {}) {
  for (const variable of ['FFMPEG_PATH', 'FFPROBE_PATH']) {
    const value = process.env[variable]?.trim();
    if (value && !findMediaTools()[variable === 'FFMPEG_PATH' ? 'ffmpeg' : 'ffprobe']) {
      console.error(`setup: FAILED: ${variable}=${value} is not an executable file; fix or unset it`);
      return false;
    }
  }
  let found = findMediaTools();
  if (found.ffmpeg && found.ffprobe) {
    log(`ffmpeg ${found.ffmpeg}, ffprobe ${found.ffprobe}`);
    return true;
  }
  const prefix = noInstall || process.env.POSEPOOL_SETUP_NO_INSTALL === '1' ? null : aptPrefix();
  if (prefix) {
    log("no ffmpeg/ffprobe found: installing Debian/Ubuntu's ffmpeg");
    if (!aptInstall(prefix, ['ffmpeg'], log)) {
      console.error('setup: FAILED: apt-get install ffmpeg failed (is the Debian/Ubuntu mirror reachable?)');
      return false;
    }
    found = findMediaTools();
    if (found.ffmpeg && found.ffprobe) {
      log(`ffmpeg ${found.ffmpeg}, ffprobe ${found.ffprobe}`);
      return true;
    }
  }
  console.error(
    `setup: FAILED: ${found.ffmpeg ? 'ffprobe' : 'ffmpeg'} not found (FFMPEG_PATH/FFPROBE_PATH unset, no ffmpeg-static binary, none on PATH). ` +
      'Install ffmpeg (Debian/Ubuntu: sudo apt-get install ffmpeg; macOS: brew install ffmpeg; Windows: winget install Gyan.FFmpeg) ' +
      'or set FFMPEG_PATH and FFPROBE_PATH, then run `npm run setup` again.',
  );
  return false;
}

/**
 * The whole `npm run setup`; returns the exit status.
 * @param {SetupOptions} [options]
 */
export function runSetup(options = {}) {
  const status = runPoseServiceSetup(options);
  if (status !== 0) return status;
  return ensureMediaTools() ? 0 : 1;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const argv = process.argv.slice(2);
  const unknown = argv.filter((a) => !['--tests', '--force'].includes(a));
  if (unknown.length) {
    console.error(`setup: unknown option ${unknown.join(' ')} (use --tests, --force)`);
    process.exit(64);
  }
  process.exit(runSetup({ tests: argv.includes('--tests'), force: argv.includes('--force') }));
}
