/**
 * The stream section: how soon a client sees poses. The real server (the default model and
 * workers), one upload at a time of the long clip: the plain JSON answer (all frames at the end)
 * against the NDJSON stream (Accept: application/x-ndjson): its first frame and its last line.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Clip } from './clips.js';
import { SAMPLE_FPS } from './clips.js';
import type { BenchContext } from './context.js';
import { startBenchServer } from './server-process.js';
import { type Spread, spread } from './stats.js';

export interface StreamBenchResult {
  model: string;
  frames: number;
  /** POST → the whole JSON body parsed. */
  jsonMs: Spread;
  /** POST → the first frame's line (NDJSON). */
  firstFrameMs: Spread;
  /** POST → the last line (NDJSON). */
  streamMs: Spread;
}

export async function runStreamBench(ctx: BenchContext, model: string, clip: Clip): Promise<StreamBenchResult> {
  const server = await startBenchServer(ctx, {
    POSE_MODEL: model,
    POSE_DEVICE: 'cpu',
    MAX_FRAMES_LIMIT: String(Math.max(3000, clip.frames)),
  });
  try {
    const post = (ndjson: boolean) => timedPost(`${server.url}/api/upload-video-with-pose`, clip, ndjson);
    await post(false); // warm-up
    const json: number[] = [];
    const first: number[] = [];
    const whole: number[] = [];
    for (let i = 0; i < ctx.reps; i++) {
      json.push((await post(false)).doneMs);
      const s = await post(true);
      first.push(s.firstMs);
      whole.push(s.doneMs);
    }
    return { model, frames: clip.frames, jsonMs: spread(json), firstFrameMs: spread(first), streamMs: spread(whole) };
  } finally {
    await server.stop();
  }
}

async function timedPost(url: string, clip: Clip, ndjson: boolean): Promise<{ firstMs: number; doneMs: number }> {
  const boundary = `----posepool-bench-${randomBytes(8).toString('hex')}`;
  const fields = { fps: String(SAMPLE_FPS), maxFrames: String(clip.frames) };
  const head = Object.entries(fields).map(([k, v]) => `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`);
  const body = Buffer.concat([
    Buffer.from(head.join('')),
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="video"; filename="${path.basename(clip.file)}"\r\n\r\n`),
    readFileSync(clip.file),
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  const t0 = performance.now();
  const res = await fetch(url, {
    method: 'POST',
    body,
    headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, ...(ndjson ? { accept: 'application/x-ndjson' } : {}) },
  });
  if (res.status !== 200) throw new Error(`POST answered ${res.status}: ${await res.text()}`);
  let firstMs = 0;
  let text = '';
  const decoder = new TextDecoder();
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
    text += decoder.decode(chunk, { stream: true });
    if (!firstMs && text.includes('\n')) firstMs = performance.now() - t0;
  }
  if (!ndjson) JSON.parse(text);
  const doneMs = performance.now() - t0;
  return { firstMs: firstMs || doneMs, doneMs };
}
