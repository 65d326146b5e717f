/**
 * The frames every measurement uses: one source clip (default: the committed fixture
 * server/test/fixtures/vtest-3s.mp4, 768x576, 10 fps, 30 frames; --source picks another), looped
 * without re-encoding (ffmpeg concat, stream copy) to as many frames as a row needs, sampled at
 * 10 fps like the server's default. The JPEG frames are made by the server's own frame source
 * (same ffmpeg arguments, so the same bytes the workers get with POSE_TRANSPORT=jpeg).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { extractFrames, type FramePixels, type FrameSourceOptions } from '../../server/media/frame-source.js';
import { probeVideo, type VideoInfo } from '../../server/media/probe.js';
import type { BenchContext } from './context.js';

export const SAMPLE_FPS = 10;
export const DEFAULT_SOURCE = path.join('server', 'test', 'fixtures', 'vtest-3s.mp4');

export interface Clip {
  file: string;
  /** Frames the server samples from it (fps 10, maxFrames = this). */
  frames: number;
  video: VideoInfo;
  bytes: number;
}

export interface FrameSet {
  dir: string;
  count: number;
  width: number;
  height: number;
}

export interface Source {
  file: string;
  video: VideoInfo;
  /** Frames one copy yields at SAMPLE_FPS. */
  framesPerCopy: number;
}

/** The server's sampling rate for a video: SAMPLE_FPS, capped at the source's. */
export function sampleFps(video: VideoInfo): number {
  return Math.min(SAMPLE_FPS, video.fps || SAMPLE_FPS);
}

/** The server's frame source options for a clip's first `maxFrames` sampled frames. */
export function clipFrameSource(ctx: BenchContext, clip: Clip, maxFrames: number, pixels: FramePixels): FrameSourceOptions {
  return {
    ffmpeg: ctx.ffmpeg,
    file: clip.file,
    fps: sampleFps(clip.video),
    maxFrames,
    width: clip.video.width,
    height: clip.video.height,
    pixels,
  };
}

export async function openSource(ctx: BenchContext, file = path.join(ctx.repo, DEFAULT_SOURCE)): Promise<Source> {
  if (!existsSync(file)) throw new Error(`benchmark source clip not found: ${file}`);
  const video = await probeVideo(ctx.ffprobe, file);
  const fps = sampleFps(video);
  const framesPerCopy = Math.max(1, Math.floor((video.durationMs / 1000) * fps + 1e-6));
  return { file: path.resolve(file), video, framesPerCopy };
}

/** The source looped to at least `frames` sampled frames (cached in the work folder). */
export async function loopedClip(ctx: BenchContext, source: Source, frames: number): Promise<Clip> {
  const copies = Math.ceil(frames / source.framesPerCopy);
  const ext = path.extname(source.file) || '.mp4';
  const stem = path.basename(source.file, ext);
  const file = path.join(ctx.workDir, `${stem}-x${copies}${ext}`);
  if (!existsSync(file) || statSync(file).mtimeMs < statSync(source.file).mtimeMs) {
    const list = path.join(ctx.workDir, `${stem}-x${copies}.txt`);
    const line = `file '${source.file.replace(/'/g, "'\\''")}'\n`;
    writeFileSync(list, line.repeat(copies));
    const r = spawnSync(
      ctx.ffmpeg,
      ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'concat', '-safe', '0', '-i', list, '-map', '0:v:0', '-c', 'copy', file],
      { encoding: 'utf8' },
    );
    rmSync(list, { force: true });
    if (r.status !== 0) throw new Error(`ffmpeg could not loop ${source.file}: ${r.stderr}`);
  }
  const video = await probeVideo(ctx.ffprobe, file);
  return { file, frames, video, bytes: statSync(file).size };
}

/** The clip's first `count` sampled frames as the server makes them (JPEG, ffmpeg -q:v 3), in a folder. */
export async function jpegFrames(ctx: BenchContext, clip: Clip, count = clip.frames): Promise<FrameSet> {
  const dir = path.join(ctx.workDir, `frames-${path.basename(clip.file, path.extname(clip.file))}-${count}`);
  const have = existsSync(dir) ? readdirSync(dir).filter((n) => /^frame-\d+\.jpg$/.test(n)).length : 0;
  if (have !== count) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    let n = 0;
    const outcome: { error?: string } = {};
    for await (const f of extractFrames(clipFrameSource(ctx, clip, count, 'jpeg'), outcome)) {
      writeFileSync(path.join(dir, frameName(f.index)), f.data);
      n++;
    }
    if (n !== count) throw new Error(`expected ${count} frames from ${clip.file}, ffmpeg gave ${n} ${outcome.error ?? ''}`);
  }
  return { dir, count, width: clip.video.width, height: clip.video.height };
}

export function frameName(index: number): string {
  return `frame-${String(index).padStart(6, '0')}.jpg`;
}

/** The same frames as raw RGB (width*height*3 bytes each, back to back), decoded from the JPEGs. */
export function rawFrames(ctx: BenchContext, frames: FrameSet): string {
  const file = path.join(frames.dir, 'frames.rgb');
  const size = frames.width * frames.height * 3 * frames.count;
  if (existsSync(file) && statSync(file).size === size) return file;
  const r = spawnSync(
    ctx.ffmpeg,
    [
      '-hide_banner',
      '-loglevel',
      'error',
      '-y',
      '-i',
      path.join(frames.dir, 'frame-%06d.jpg'),
      '-f',
      'rawvideo',
      '-pix_fmt',
      'rgb24',
      file,
    ],
    { encoding: 'utf8' },
  );
  if (r.status !== 0 || !existsSync(file) || statSync(file).size !== size) {
    throw new Error(`ffmpeg could not turn ${frames.dir} into raw RGB: ${r.stderr}`);
  }
  return file;
}
