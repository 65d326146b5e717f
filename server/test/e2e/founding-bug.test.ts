/**
 * The founding bug, for real: workers run by an interpreter that has numpy and torch but not cv2.
 * /health names the Python exception, the interpreter and the fix within 3 s; an upload gets 503
 * POSE_SERVICE_UNAVAILABLE with the same cause in well under a second; nothing anywhere says
 * EOF/EPIPE/"stdin write failed"; the server idles while the supervisor retries with backoff; and
 * once cv2 appears in that interpreter the pool becomes ready without a restart.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import type { PoolHealth } from '../../../workers/index.js';
import { buildCv2LessVenv, whyNoCv2LessVenv } from '../../../workers/test/support/cv2-less-venv.js';
import { describeIfReady } from '../../../workers/test/support/prerequisites.js';
import { FIXTURES, startTestServer, type TestServer, upload, videoForm, waitFor, waitForUnavailable } from '../support/test-server.js';

const PIPE_NOISE = /\bEOF\b|EPIPE|stdin write failed|write after end/;
const dir = mkdtempSync(path.join(os.tmpdir(), 'posepool-nocv2-'));
let server: TestServer | undefined;
afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describeIfReady('workers whose interpreter lacks cv2', whyNoCv2LessVenv(), () => {
  it('fail visibly, cheaply and recoverably', async () => {
    const venv = await buildCv2LessVenv(path.join(dir, 'venv'));
    const t0 = Date.now();
    server = await startTestServer({
      POSE_PYTHON: venv.python,
      POSE_MODEL: 'movenet-lightning',
      POSE_WORKERS: '2',
      POSE_BACKOFF_INITIAL_MS: '250',
      POSE_BACKOFF_MAX_MS: '2000',
    });
    const url = server.url;

    // 1. /health: 503 naming the real cause within 3 s.
    const health = await waitForUnavailable(url, 3000);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(health.status).toBe('unavailable');
    for (const w of health.workers) {
      expect(w.lastError.type).toBe('ModuleNotFoundError');
      expect(w.lastError.message).toBe("No module named 'cv2'");
      expect(w.lastError.python).toBe(venv.python);
      expect(w.lastError.hint).toMatch(/npm run setup/);
      expect(w.lastError.hint).toMatch(/opencv/);
    }
    expect(JSON.stringify(health)).toContain("ModuleNotFoundError: No module named 'cv2'");

    // 2. An upload in that state: 503 with the same cause, well under a second.
    const u0 = performance.now();
    const res = await upload(url, videoForm(path.join(FIXTURES, 'messi-pan.mp4'), { role: 'rider' }));
    const uploadMs = performance.now() - u0;
    expect(res.status).toBe(503);
    expect(uploadMs).toBeLessThan(1000);
    expect(res.json.error.code).toBe('POSE_SERVICE_UNAVAILABLE');
    expect(res.json.error.lastError).toMatchObject({ type: 'ModuleNotFoundError', message: "No module named 'cv2'" });
    expect(res.json.error.message).toContain("ModuleNotFoundError: No module named 'cv2'");
    expect(res.headers.get('retry-after')).toBeTruthy();

    // 3. Near idle while the supervisor retries (no create/acquire spin), and retries do happen.
    const restartsBefore = health.workers.reduce((n, w) => n + w.restarts, 0);
    const cpu0 = process.cpuUsage();
    const wall0 = performance.now();
    await new Promise((r) => setTimeout(r, 3000));
    const cpu = process.cpuUsage(cpu0);
    const cpuShare = (cpu.user + cpu.system) / 1000 / (performance.now() - wall0);
    expect(cpuShare).toBeLessThan(0.15);
    const later = (await (await fetch(`${url}/health`)).json()) as PoolHealth;
    const restartsAfter = later.workers.reduce((n, w) => n + w.restarts, 0);
    expect(restartsAfter).toBeGreaterThan(restartsBefore);
    // Capped exponential backoff: 3 s at 250 ms doubling to 2 s allows only a few restarts per worker.
    expect(restartsAfter - restartsBefore).toBeLessThanOrEqual(2 * 5);

    // 4. Never the old symptom, anywhere.
    expect(JSON.stringify(later)).not.toMatch(PIPE_NOISE);
    expect(res.text).not.toMatch(PIPE_NOISE);
    expect(server.logs.join('\n')).not.toMatch(PIPE_NOISE);
    expect(server.logs.join('\n')).toContain("No module named 'cv2'");

    // 5. cv2 appears in that same interpreter: ready without restarting the server.
    await venv.addCv2();
    await waitFor(async () => (await fetch(`${url}/health`)).status === 200, 30_000, 100);
    const ok = await upload(url, videoForm(path.join(FIXTURES, 'messi-pan.mp4'), { maxFrames: '4' }));
    expect(ok.status).toBe(200);
    expect(ok.json.frames).toHaveLength(4);
    expect(ok.json.model.name).toBe('movenet-lightning');
  }, 90_000);
});
