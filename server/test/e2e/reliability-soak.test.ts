/**
 * Reliability: the soak (scripts/soak.ts) against the real server process (dist/server/main.js)
 * and 2 real Python workers (`synthetic` TEST DOUBLE model). Sequential uploads, one in ten a bad
 * one (zero bytes, truncated, over MAX_UPLOAD_MB, a bad field, a client hanging up), with the
 * server's RSS and descriptors, its children, the workers' RSS and restarts, and the request
 * directories measured after a warm-up and at the end, against stated bounds (BOUNDS in the script).
 *
 * In `npm test`: a bounded leak check of 60 uploads (slow: about 20-40 s). The long soak is behind
 * a flag: POSEPOOL_SOAK=1 (200 uploads) or POSEPOOL_SOAK=N (N uploads); or run the script itself:
 * `node dist/scripts/soak.js --uploads 500`.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BOUNDS, kindOf, reportLines, runSoak } from '../../../scripts/soak.js';
import { REPO } from '../support/server-process.js';

const flag = process.env.POSEPOOL_SOAK;
const longUploads = flag ? (/^\d+$/.test(flag) && Number(flag) > 1 ? Number(flag) : 200) : 0;

beforeAll(() => {
  // The project's incremental build (tsc + protocol.json into dist/): about a second when dist is current,
  // as it is under `npm test`, whose pretest has built it.
  execFileSync(process.execPath, [path.join(REPO, 'scripts', 'prepare.mjs'), '--build-only'], { cwd: REPO, stdio: 'pipe' });
}, 180_000);

function check(report: Awaited<ReturnType<typeof runSoak>>): void {
  for (const line of reportLines(report)) console.info(`[figures] ${line}`);
  expect(report.unexpected).toEqual([]);
  expect(report.violations).toEqual([]);
  expect(report.after.tempEntries).toBe(0);
  expect(report.deltas.restarts).toBe(0);
  if (report.deltas.serverFds !== null) expect(report.deltas.serverFds).toBeLessThanOrEqual(BOUNDS.serverFds);
  expect(report.deltas.serverRssKb).toBeLessThanOrEqual(BOUNDS.serverRssKb);
  if (report.after.children) {
    // Only the 2 workers: no ffmpeg or ffprobe left behind by any upload.
    expect(Object.entries(report.after.children).filter(([name]) => !/^python/.test(name))).toEqual([]);
  }
}

describe('soak against the real server process (synthetic test double)', () => {
  it('the upload mix covers every bad kind within 80 uploads', () => {
    const kinds = new Set(Array.from({ length: 80 }, (_, i) => kindOf(i)));
    expect([...kinds].sort()).toEqual([
      'bad-field',
      'empty',
      'hang-up',
      'json-body',
      'ok',
      'pixel-bomb',
      'stalled',
      'too-large',
      'truncated',
    ]);
  });

  it('leak check, 60 sequential uploads (slow): no growth of RSS, fds, children or temp files past the bounds', async () => {
    const report = await runSoak({ uploads: 60, workers: 2, warmup: 10 });
    check(report);
    expect(report.outcomes.ok).toBe(54);
    expect(report.framesPosed).toBe(54 * 8);
  }, 300_000);

  // Opt-in (POSEPOOL_SOAK=N): not registered at all otherwise, so it never counts as a skip.
  if (longUploads) {
    it(`long soak behind POSEPOOL_SOAK: ${longUploads} sequential uploads`, async () => {
      const report = await runSoak({ uploads: longUploads, workers: 2, log: (l) => console.info(l) });
      check(report);
    }, 3_600_000);
  }
});
