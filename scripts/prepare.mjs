#!/usr/bin/env node
/**
 * Runs before `npm start`, `npm test` and the tools: the whole set-up, each step idempotent and quick
 * when already done.
 *   1. Node dependencies present (else: run `npm install`)
 *   2. the pose-service's Python interpreter (scripts/setup.mjs; with the tests' modules for `npm test`)
 *      and an ffmpeg/ffprobe (apt-get install ffmpeg where possible)
 *   3. the TypeScript build (skipped when dist/ is newer than every source)
 *   4. the server's own ffmpeg/ffprobe resolution, with their versions
 *
 *   node scripts/prepare.mjs [--build-only] [--tests]
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { build, DIST, staleReason } from './lib/build.mjs';
import { ROOT, seconds } from './lib/repo.mjs';
import { runSetup } from './setup.mjs';
import { ensureTestBrowser } from './lib/test-browser.mjs';

const argv = process.argv.slice(2);
const buildOnly = argv.includes('--build-only');
const forTests = argv.includes('--tests') || process.env.npm_lifecycle_event === 'pretest';
const say = (m) => console.log(`prepare: ${m}`);
const fail = (m) => {
  console.error(`prepare: FAILED: ${m}`);
  process.exit(1);
};

if (!existsSync(path.join(ROOT, 'node_modules', 'typescript')) || !existsSync(path.join(ROOT, 'node_modules', 'fastify'))) {
  fail('Node dependencies are missing: run `npm install`');
}

if (!buildOnly) {
  const t0 = Date.now();
  say(`set-up${forTests ? ' (with the tests\' Python modules)' : ''}`);
  if (runSetup({ tests: forTests }) !== 0) fail('the set-up did not complete (see above)');
  say(`set-up done in ${seconds(Date.now() - t0)}`);
}

// Optional, tests only: the headless Chromium of the page test (scripts/lib/test-browser.mjs; never fatal).
if (!buildOnly && forTests) ensureTestBrowser();

const why = staleReason();
if (why) {
  const t0 = Date.now();
  say(`build: tsc (${why})`);
  const r = build();
  if (r.output) console.log(r.output);
  if (!r.ok) fail('the TypeScript build failed (see above)');
  say(`build done in ${seconds(Date.now() - t0)}`);
} else {
  say('build up to date');
}

if (!buildOnly) {
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
    fail(err.message);
  }
}
