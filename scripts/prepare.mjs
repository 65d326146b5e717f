#!/usr/bin/env node
/**
 * Runs around the npm commands: each step idempotent and quick when already done. Which command
 * installs what:
 *
 *   npm install  → --install  the set-up: Node deps are there; the workers' Python (found, or made with
 *                             pip / apt-get) and ffmpeg (apt-get); the build. A Python it cannot make is
 *                             a loud warning, not a failed install (`npm start` still serves and says why).
 *   npm start    → --check    installs nothing and asks no package index: checks the workers' Python
 *                             (one line; a broken one is a warning, the server starts and /health names
 *                             the cause), needs an ffmpeg, builds when stale.
 *   npm test     → --tests    as --install, with the tests' modules (pytest) and Chromium; fails hard.
 *   (none)                    as --install, failing hard (the benchmark).
 *   --build-only              only the build (doctor, soak, the CLI's tools).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { build, DIST, staleReason } from './lib/build.mjs';
import { ROOT, seconds } from './lib/repo.mjs';
import { ensureTestTools } from './lib/test-tools.mjs';
import { checkWorkerPython } from './lib/worker-python-check.mjs';
import { ensureMediaTools, runPoseServiceSetup, runSetup } from './setup.mjs';

const argv = process.argv.slice(2);
const event = process.env.npm_lifecycle_event;
const mode = argv.includes('--build-only')
  ? 'build-only'
  : argv.includes('--check') || event === 'prestart'
    ? 'check'
    : argv.includes('--tests') || event === 'pretest'
      ? 'tests'
      : argv.includes('--install') || event === 'postinstall'
        ? 'install'
        : 'setup';
/** @param {string} m */
const say = (m) => console.log(`prepare: ${m}`);
/** @param {string} m */
const warn = (m) => console.error(`prepare: WARNING: ${m}`);
/** @param {string} m */
const fail = (m) => {
  console.error(`prepare: FAILED: ${m}`);
  process.exit(1);
};

const haveTypescript = existsSync(path.join(ROOT, 'node_modules', 'typescript'));
// A production install (no dev dependencies) can start from a built dist/; only a stale build needs tsc.
const needsTypescript = mode !== 'install' && !(mode === 'check' && !staleReason());
if (!existsSync(path.join(ROOT, 'node_modules', 'fastify')) || (!haveTypescript && needsTypescript)) {
  fail('Node dependencies are missing: run `npm install`');
}

if (mode === 'check') {
  const t0 = Date.now();
  checkWorkerPython({ search: () => runPoseServiceSetup({ noInstall: true }), say, warn });
  if (!ensureMediaTools(say, { noInstall: true }))
    fail('no ffmpeg/ffprobe for the server (see above): `npm install` or `npm run setup` installs one');
  say(`checked in ${seconds(Date.now() - t0)} (nothing installed)`);
} else if (mode !== 'build-only') {
  const t0 = Date.now();
  say(`set-up${mode === 'tests' ? " (with the tests' Python modules)" : ''}`);
  if (runSetup({ tests: mode === 'tests' }) !== 0) {
    if (mode !== 'install') fail('the set-up did not complete (see above)');
    warn(
      'the set-up did not complete (see above). `npm start` will still serve, and /health will name the cause ' +
        'until it is fixed; then run `npm run setup`.',
    );
  } else {
    say(`set-up done in ${seconds(Date.now() - t0)}`);
  }
}

// Optional, tests only: Chromium for the page test, redis-server for the jobs tests (scripts/lib/test-tools.mjs; never fatal).
if (mode === 'tests') ensureTestTools();

const why = staleReason();
if (!why) {
  say('build up to date');
} else if (!haveTypescript) {
  say('no TypeScript compiler (a production install without dev dependencies): the build is skipped');
  process.exit(0);
} else {
  const t0 = Date.now();
  say(`build: tsc (${why})`);
  const r = build();
  if (r.output) console.log(r.output);
  if (!r.ok) fail('the TypeScript build failed (see above)');
  say(`build done in ${seconds(Date.now() - t0)}`);
}

if (mode !== 'build-only') {
  const { resolveMediaTools, toolVersion } = await import(pathToFileURL(path.join(DIST, 'server', 'runtime', 'ffmpeg-path.js')).href);
  try {
    const tools = resolveMediaTools();
    for (const name of ['ffmpeg', 'ffprobe']) {
      const t = tools[name];
      const version = toolVersion(t.path);
      if (!version) fail(`${name} at ${t.path} (${t.source}) does not run: reinstall it or set ${name.toUpperCase()}_PATH`);
      say(`${name}: ${t.path} (${t.source}): ${version.replace(/ Copyright.*/, '')}`);
    }
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (mode === 'install') warn(message);
    else fail(message);
  }
}
