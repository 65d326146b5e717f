/**
 * The page at / in headless Chromium (Debian's /usr/bin/chromium driven by playwright-core): pick a
 * real clip, upload it with tus through a proxy that drops the connection halfway through the body
 * (the page says so, resumes from the server's offset and carries on), start the job, watch the
 * progress, then scrub to a frame and check in a screenshot that the skeleton is drawn over the
 * video where the result's keypoints are.
 *
 * Chromium comes from `apt-get install chromium` (scripts/prepare.mjs installs it before `npm test`
 * where apt works). Without it the test is skipped with a message, except under CI=true, where it fails.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeIfReady } from '../../../workers/test/support/prerequisites.js';
import { type CuttingProxy, startCuttingProxy } from '../support/cutting-proxy.js';
import { FIXTURES, startTestServer, type TestServer, waitReady } from '../support/test-server.js';

const CHROMIUM = process.env.POSEPOOL_CHROMIUM ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
const missing = haveChromium ? null : `${CHROMIUM} is absent (Debian/Ubuntu: apt-get install chromium; or set POSEPOOL_CHROMIUM)`;

describeIfReady('the page at / (headless Chromium)', missing, () => {
  let server: TestServer;
  let proxy: CuttingProxy;
  let browser: Browser;
  const clip = path.join(FIXTURES, 'messi-pan.mp4');

  beforeAll(async () => {
    server = await startTestServer({ POSE_WORKERS: '2', POSE_BATCH_SIZE: '4' });
    await waitReady(server.url);
    // The browser reaches the server through a line that goes dead once, halfway through the upload's body.
    proxy = await startCuttingProxy(server.url, { cutAfterPatchBytes: Math.floor(readFileSync(clip).length / 2) });
    // launch() gives the browser a fresh temporary profile (--user-data-dir), removed at close.
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
      timeout: 30_000,
    });
  });
  afterAll(async () => {
    await browser?.close();
    await proxy?.close();
    await server?.close();
  });

  /** Counts edge-coloured pixels of a PNG, and tells which of the given points are on one (3 px slack). */
  async function inspect(png: Buffer, points: [number, number][] = []): Promise<{ edgePixels: number; hits: boolean[] }> {
    const scratch = await browser.newPage();
    try {
      return await scratch.evaluate(
        async ({ b64, points }) => {
          const blob = await (await fetch(`data:image/png;base64,${b64}`)).blob();
          const bmp = await createImageBitmap(blob);
          const ctx = new OffscreenCanvas(bmp.width, bmp.height).getContext('2d')!;
          ctx.drawImage(bmp, 0, 0);
          const { data, width, height } = ctx.getImageData(0, 0, bmp.width, bmp.height);
          // The page draws edges in #ff00ff (server/public/app.js EDGE_COLOUR); slack for anti-aliasing.
          const edge = (x: number, y: number) => {
            if (x < 0 || y < 0 || x >= width || y >= height) return false;
            const i = (y * width + x) * 4;
            return data[i] > 190 && data[i + 2] > 190 && data[i + 1] < 90;
          };
          let edgePixels = 0;
          for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) if (edge(x, y)) edgePixels++;
          const hits = points.map(([px, py]) => {
            for (let dy = -3; dy <= 3; dy++)
              for (let dx = -3; dx <= 3; dx++) if (edge(Math.round(px) + dx, Math.round(py) + dy)) return true;
            return false;
          });
          return { edgePixels, hits };
        },
        { b64: png.toString('base64'), points },
      );
    } finally {
      await scratch.close();
    }
  }

  async function metric(name: string): Promise<number> {
    const line = (await (await fetch(`${server.url}/metrics`)).text()).split('\n').find((l) => l.startsWith(`${name} `));
    return Number(line?.split(' ')[1] ?? 0);
  }

  async function scrubTo(page: Page, index: number, timeMs: number): Promise<void> {
    await page.$eval(
      '#scrub',
      (el, i) => {
        (el as HTMLInputElement).value = String(i);
        el.dispatchEvent(new Event('input', { bubbles: true }));
      },
      index,
    );
    await page.waitForFunction(
      ({ i, t }) => {
        const v = document.querySelector('video')!;
        const c = document.querySelector('canvas')!;
        return c.dataset.frame === String(i) && !v.seeking && Math.abs(v.currentTime * 1000 - t) < 40;
      },
      { i: index, t: timeMs },
      { timeout: 10_000 },
    );
  }

  it('uploads a real clip (resuming after a dropped connection), shows progress, and draws the skeleton over the video (screenshot check)', async () => {
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    const uploads: string[] = [];
    page.on('request', (r) => {
      if (r.url().includes('/api/uploads')) uploads.push(r.method());
    });
    const bytesBefore = await metric('posepool_resumable_bytes_total');
    await page.goto(proxy.url);
    expect(await page.title()).toBe('posepool');

    const states: string[] = [];
    await page.exposeFunction('__state', (s: string) => states.push(s));
    await page.evaluate(() => {
      const el = document.getElementById('status')!;
      const exposed = window as unknown as { __state: (state: string | undefined) => void };
      new MutationObserver(() => exposed.__state(el.dataset.state)).observe(el, {
        attributes: true,
        attributeFilter: ['data-state'],
      });
    });

    await page.setInputFiles('#video-file', clip);
    await page.fill('#fps', '10');
    const accepted = page.waitForResponse((r) => r.url().endsWith('/api/jobs') && r.request().method() === 'POST');
    await page.click('#upload');
    const job = await (await accepted).json();
    expect(job.state).toMatch(/queued|running/);
    await page.waitForSelector('#status[data-state="done"]', { timeout: 30_000 });
    expect(await page.textContent('#status')).toMatch(/Done: 20 of 20 frames with a pose/);
    expect(states).toContain('uploading');
    expect(states.some((s) => s === 'running' || s === 'queued')).toBe(true);
    // The upload went by tus, its connection was cut, and the page resumed it from the server's offset (HEAD):
    // each byte reached the server's file once.
    expect(proxy.cuts).toBe(1);
    expect(states.indexOf('resuming')).toBeGreaterThan(states.indexOf('uploading'));
    expect(uploads.slice(0, 2)).toEqual(['POST', 'PATCH']);
    expect(uploads).toContain('HEAD');
    expect((await metric('posepool_resumable_bytes_total')) - bytesBefore).toBe(readFileSync(clip).length);
    expect(await page.$eval('progress', (p) => (p as HTMLProgressElement).value)).toBe(1);

    // The clip itself plays back in the page (Debian's Chromium decodes H.264).
    await page.waitForFunction(() => document.querySelector('video')!.readyState >= 2, undefined, { timeout: 10_000 });

    const result = (await (await fetch(`${server.url}/api/jobs/${job.id}`)).json()).result;
    const index = 5;
    const frame = result.frames[index];
    await scrubTo(page, index, frame.timeMs);
    expect(await page.textContent('#frame-label')).toMatch(/^frame 6 \/ 20 at 0\.50 s, 1 person/);

    // Per-keypoint confidence: one row per model keypoint, the frame's scores.
    const rows = await page.$$eval('#confidence tbody tr', (trs) =>
      trs.map((tr) => [...(tr as HTMLTableRowElement).cells].map((c) => c.textContent)),
    );
    expect(rows.map((r) => r[0])).toEqual(result.model.keypoints);
    rows.forEach((r, k) => {
      const [x, y, score] = frame.persons[0].keypoints[k];
      expect(r[1]).toBe(x.toFixed(1));
      expect(r[2]).toBe(y.toFixed(1));
      expect(r[3]).toBe(score.toFixed(2));
    });

    // Screenshot of the video with its overlay: skeleton pixels, on the result's edges.
    const stage = page.locator('#stage');
    const box = (await stage.boundingBox())!;
    const scale = box.width / result.video.width;
    const kp = frame.persons[0].keypoints as [number, number, number][];
    const solid = (result.model.skeleton as [number, number][]).filter(([a, b]) => Math.min(kp[a][2], kp[b][2]) >= 0.3);
    const midpoints = solid.map(([a, b]) => [((kp[a][0] + kp[b][0]) / 2) * scale, ((kp[a][1] + kp[b][1]) / 2) * scale] as [number, number]);
    const withSkeleton = await stage.screenshot();
    const shots = process.env.POSEPOOL_SCREENSHOT_DIR; // to look at them: POSEPOOL_SCREENSHOT_DIR=/tmp/shots
    if (shots) {
      writeFileSync(path.join(shots, 'page-skeleton.png'), withSkeleton);
      await page.screenshot({ path: path.join(shots, 'page-full.png'), fullPage: true });
    }
    const shot = await inspect(withSkeleton, midpoints);
    expect(solid.length).toBeGreaterThan(3);
    expect(shot.hits.filter(Boolean).length).toBe(solid.length);
    expect(shot.edgePixels).toBeGreaterThan(500);

    // The same frame with the overlay hidden: the video alone has (almost) none of those pixels.
    await page.$eval('#overlay', (c) => ((c as HTMLElement).style.visibility = 'hidden'));
    const bareShot = await stage.screenshot();
    if (shots) writeFileSync(path.join(shots, 'page-bare.png'), bareShot);
    const bare = await inspect(bareShot, midpoints);
    expect(bare.edgePixels).toBeLessThan(shot.edgePixels / 20);
    expect(bare.hits.filter(Boolean).length).toBe(0);
    expect(pageErrors).toEqual([]);
    await page.close();
  });
  it('draws frames as they are posed, then plots the coaching angles under the video; a click on the plot seeks', async () => {
    const page = await browser.newPage({ viewport: { width: 1100, height: 1100 } });
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(server.url);
    // Every frame the overlay showed while the job still ran (data-live), as the page drew it.
    const liveFrames: number[] = [];
    await page.exposeFunction('__live', (frame: number) => liveFrames.push(frame));
    await page.evaluate(() => {
      const c = document.getElementById('overlay')!;
      const exposed = window as unknown as { __live: (frame: number) => void };
      new MutationObserver(() => {
        if (c.dataset.live === 'true') exposed.__live(Number(c.dataset.frame));
      }).observe(c, { attributes: true, attributeFilter: ['data-frame', 'data-live'] });
    });
    await page.setInputFiles('#video-file', clip);
    await page.fill('#fps', '30');
    await page.check('#metrics');
    await page.click('#upload');
    await page.waitForSelector('#status[data-state="done"]', { timeout: 60_000 });
    expect(liveFrames.length).toBeGreaterThan(0);
    expect(Math.min(...liveFrames)).toBeGreaterThanOrEqual(0);
    expect(await page.$eval('#overlay', (c) => (c as HTMLElement).dataset.live)).toBeUndefined();

    // The angles plot: shown with the result's ranges in its legend; a click halfway seeks to the middle frame.
    await page.waitForSelector('#angles:not([hidden])');
    expect(await page.textContent('#angles-legend')).toMatch(/torsoInclination 0…0/);
    await page.waitForFunction(() => document.querySelector('video')!.readyState >= 1, undefined, { timeout: 10_000 });
    const box = (await page.$('#angles'))!;
    const rect = (await box.boundingBox())!;
    await page.mouse.click(rect.x + rect.width / 2, rect.y + rect.height / 2);
    await page.waitForFunction(() => {
      const f = Number(document.getElementById('overlay')!.dataset.frame);
      return f >= 28 && f <= 31 && document.getElementById('angles')!.dataset.playhead === String(f);
    });
    const t = await page.$eval('video', (v) => (v as HTMLVideoElement).currentTime);
    expect(t).toBeGreaterThan(0.9);
    expect(t).toBeLessThan(1.1);
    expect(pageErrors).toEqual([]);
    await page.close();
  }, 90_000);
});
