/**
 * The server as a process: bad configuration stops it with one line; SIGTERM drains; kill -9 of
 * the server leaves no worker behind (each exits when its stdin closes).
 */
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, isAlive, runServerToExit, startServerProcess } from '../support/server-process.js';
import { FIXTURES, testPython, upload, videoForm, waitFor, waitReady } from '../support/test-server.js';

beforeAll(() => buildOnce(), 120_000);

describe('bad configuration', () => {
  it.each([
    [{ POSE_WORKERS: '0' }, 'POSE_WORKERS'],
    [{ POSE_MODEL: 'posenet-9000' }, 'POSE_MODEL'],
    [{ POSE_PYTHON: '/nonexistent/bin/python3' }, 'POSE_PYTHON'],
    [{ POSE_BATCH_SIZE: 'eight' }, 'POSE_BATCH_SIZE'],
  ])('%o stops at once with one line naming the variable', (env, variable) => {
    const { code, output } = runServerToExit({ POSE_PYTHON: testPython(), ...env });
    expect(code).toBe(2);
    const lines = output.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(variable);
    expect(output).not.toMatch(/\n\s+at /);
  });
});

describe('signals', () => {
  it('kill -9 of the server: every worker exits within 2 s', async () => {
    const server = await startServerProcess({ POSE_PYTHON: testPython(), POSE_MODEL: 'synthetic', POSE_WORKERS: '2' });
    try {
      await waitReady(server.url, 30_000);
      const health = await (await fetch(`${server.url}/health`)).json();
      const pids: number[] = health.workers.map((w: { pid: number }) => w.pid);
      expect(pids).toHaveLength(2);
      for (const pid of pids) expect(isAlive(pid)).toBe(true);
      server.child.kill('SIGKILL');
      await server.exited;
      const t0 = Date.now();
      await waitFor(async () => pids.every((pid) => !isAlive(pid)), 2000, 50);
      expect(Date.now() - t0).toBeLessThan(2000);
    } finally {
      server.child.kill('SIGKILL');
    }
  });

  it('SIGTERM: the request in flight finishes, then workers are shut down and the process exits 0', async () => {
    const server = await startServerProcess({
      POSE_PYTHON: testPython(),
      POSE_MODEL: 'synthetic',
      POSE_WORKERS: '1',
      POSE_SYNTHETIC_FAULTS: 'infer_ms=60',
    });
    try {
      await waitReady(server.url, 30_000);
      const pids: number[] = (await (await fetch(`${server.url}/health`)).json()).workers.map((w: { pid: number }) => w.pid);
      const pending = upload(server.url, videoForm(path.join(FIXTURES, 'messi-pan.mp4')));
      await new Promise((r) => setTimeout(r, 400));
      server.child.kill('SIGTERM');
      const res = await pending;
      expect(res.status).toBe(200);
      expect(res.json.summary.framesFailed).toBe(0);
      const exit = await server.exited;
      expect(exit.code).toBe(0);
      await waitFor(async () => pids.every((pid) => !isAlive(pid)), 2000, 50);
      expect(server.output()).toMatch(/shutting down/);
    } finally {
      server.child.kill('SIGKILL');
    }
  });
});
