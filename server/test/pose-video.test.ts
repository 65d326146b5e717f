/**
 * The pipeline on its own (real ffmpeg, a pool double): frames reach the pool in order and in
 * batches, and a temp folder that cannot take the frame files fails the video with a clear
 * INTERNAL_ERROR, not a stray rejection.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { DetectParams } from '../../protocol/index.js';
import type { PoolDetectResult, PosePool } from '../../workers/index.js';
import { ApiError } from '../errors.js';
import { probeVideo } from '../media/probe.js';
import { poseVideo } from '../pipeline/pose-video.js';
import { FIXTURES } from './support/fixtures.js';
import { findTools } from './support/tools.js';

const tools = findTools();
const clip = path.join(FIXTURES, 'vtest-3s.mp4');

/** A pool double: answers each frame with no person, and records what it was sent and whether each frame file existed. */
function recordingPool(): Pick<PosePool, 'detect' | 'model' | 'desired'> & { calls: DetectParams[]; filesPresent: boolean[] } {
  const calls: DetectParams[] = [];
  const filesPresent: boolean[] = [];
  return {
    calls,
    filesPresent,
    desired: 2,
    model: () => null,
    async detect(params: DetectParams): Promise<PoolDetectResult> {
      calls.push(params);
      for (const f of params.frames) filesPresent.push(Boolean(f.path && existsSync(f.path)));
      return {
        frames: params.frames.map((f) => ({ index: f.index, persons: [] })),
        timing: { decodeMs: 0, inferMs: 0, totalMs: 0 },
        workerId: 'w0',
        attempts: 1,
      };
    },
  };
}

async function run(tempDir: string, pool = recordingPool()) {
  const video = await probeVideo(tools.ffprobe, clip);
  return poseVideo(
    {
      requestId: 't',
      file: clip,
      video,
      fps: 10,
      maxFrames: 12,
      tracking: true,
      smoothing: false,
      signal: new AbortController().signal,
      log: pino({ level: 'silent' }),
    },
    { pool, ffmpeg: tools.ffmpeg, batchSize: 4, transport: 'rgb24-file', tempDir },
  );
}

describe('poseVideo', () => {
  it('sends every frame once, in order, in batches, as raw frame files of the upright size, deleted after each batch', async () => {
    const pool = recordingPool();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pose-video-test-'));
    try {
      const result = await run(dir, pool);
      expect(result.frames.map((f) => f.index)).toEqual([...Array(12).keys()]);
      expect(pool.calls.map((c) => c.frames.length)).toEqual([4, 4, 4]);
      const first = pool.calls[0].frames[0];
      expect(first).toMatchObject({ encoding: 'rgb24-file', width: 768, height: 576 });
      expect(first.path).toBe(path.join(dir, 'frame-000000.rgb'));
      expect(pool.filesPresent).toEqual(Array(12).fill(true)); // each file is there while its batch is posed
      expect(readdirSync(dir)).toEqual([]); // and gone once it returned
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fails the video with INTERNAL_ERROR naming POSE_TEMP_DIR when the frame files cannot be written', async () => {
    const err = await run('/nonexistent/posepool-temp').catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err.code).toBe('INTERNAL_ERROR');
    expect(err.message).toMatch(/ENOENT writing to the temp folder \(POSE_TEMP_DIR\)/);
    expect(err.message).not.toContain('/nonexistent');
  });
});
