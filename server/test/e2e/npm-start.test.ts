/**
 * The founding contract under the production command itself: `npm start` (its prestart check, then
 * the server) with workers whose interpreter lacks cv2. The check says so in one line and installs
 * nothing; the server starts anyway; /health answers 503 naming cv2 within 3 s of listening; once cv2
 * appears in that interpreter the pool becomes ready and poses, without a restart.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { buildCv2LessVenv, whyNoCv2LessVenv } from '../../../workers/test/support/cv2-less-venv.js';
import { describeIfReady } from '../../../workers/test/support/prerequisites.js';
import { REPO } from '../support/server-process.js';
import { FIXTURES, upload, videoForm, waitFor, waitForUnavailable } from '../support/test-server.js';

const PIPE_NOISE = /\bEOF\b|EPIPE|stdin write failed|write after end/;
const dir = mkdtempSync(path.join(os.tmpdir(), 'posepool-npm-start-'));
let child: ChildProcess | undefined;

/** npm itself: the npm-cli.js that runs this test when there is one, else `npm` on PATH. */
function npmCommand(): { command: string; args: string[] } {
  const cli = process.env.npm_execpath;
  if (cli && /npm-cli\.js$/.test(cli)) return { command: process.execPath, args: [cli] };
  return { command: process.platform === 'win32' ? 'npm.cmd' : 'npm', args: [] };
}

/** Stops the whole process group (npm, its shell, the server, the workers) and waits for npm to exit. */
async function stop(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise((r) => c.once('exit', r));
  try {
    process.kill(-c.pid!, 'SIGTERM');
  } catch {
    /* already gone */
  }
  const forced = setTimeout(() => {
    try {
      process.kill(-c.pid!, 'SIGKILL');
    } catch {
      /* gone */
    }
  }, 10_000);
  await exited;
  clearTimeout(forced);
}

afterAll(async () => {
  if (child) await stop(child);
  rmSync(dir, { recursive: true, force: true });
});

const missing = whyNoCv2LessVenv() ?? (process.platform === 'win32' ? 'Windows (process groups)' : null);

describeIfReady('npm start with workers whose interpreter lacks cv2', missing, () => {
  it('starts, checks without installing, reports cv2 in /health within 3 s of listening, recovers without a restart', async () => {
    const venv = await buildCv2LessVenv(path.join(dir, 'venv'));
    const npm = npmCommand();
    child = spawn(npm.command, [...npm.args, 'start'], {
      cwd: REPO,
      detached: true, // its own process group, so the test can stop npm and everything under it
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        POSE_PYTHON: venv.python,
        POSE_MODEL: 'movenet-lightning',
        POSE_WORKERS: '1',
        POSE_THREADS: '1',
        POSE_BACKOFF_INITIAL_MS: '250',
        POSE_BACKOFF_MAX_MS: '1000',
        PORT: '0',
        HOST: '127.0.0.1',
        LOG_LEVEL: 'info',
        npm_config_loglevel: 'warn',
      },
    });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    const c = child;

    const url = await waitFor(async () => {
      if (c.exitCode !== null) throw new Error(`npm start exited (${c.exitCode}) before the server listened:\n${out}`);
      return /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1];
    }, 90_000);
    const listening = Date.now();

    // The start-up check: one line naming the interpreter, the cause and the fix; nothing installed.
    const warning = out.split('\n').filter((l) => l.startsWith('prepare: WARNING:'));
    expect(warning).toHaveLength(1);
    expect(warning[0]).toContain(venv.python);
    expect(warning[0]).toContain("No module named 'cv2'");
    expect(warning[0]).toContain('/health answers 503');
    expect(warning[0]).toMatch(/pip install opencv-python-headless/);
    expect(out).toContain('(nothing installed)');
    expect(out).not.toMatch(/^setup: (apt-get|creating|is a package index)/m);

    // /health: 503 naming cv2 and the interpreter within 3 s of the server listening.
    const health = await waitForUnavailable(url, 3000);
    expect(Date.now() - listening).toBeLessThan(3000);
    expect(health.workers[0].lastError).toMatchObject({
      type: 'ModuleNotFoundError',
      message: "No module named 'cv2'",
      python: venv.python,
    });
    expect(health.workers[0].lastError.hint).toMatch(/opencv/);

    // cv2 appears in that interpreter: ready and posing, same server process.
    await venv.addCv2();
    await waitFor(async () => (await fetch(`${url}/health`)).status === 200, 60_000, 100);
    const posed = await upload(url, videoForm(path.join(FIXTURES, 'messi-pan.mp4'), { maxFrames: '3' }));
    expect(posed.status).toBe(200);
    expect(posed.json.frames).toHaveLength(3);
    expect(posed.json.frames.filter((f) => f.persons.length > 0).length).toBeGreaterThan(0);
    expect(out.match(/Server listening at http:\/\/127\.0\.0\.1/g)).toHaveLength(1);
    expect(out).not.toMatch(PIPE_NOISE);

    await stop(c);
    expect(c.exitCode ?? c.signalCode).not.toBeNull();
  }, 150_000);
});
