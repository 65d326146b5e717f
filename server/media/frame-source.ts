/**
 * Streams sampled frames out of a video with ffmpeg, while it is still decoding.
 *
 * ffmpeg runs with an argument array (never a shell), applies rotation metadata (its default
 * autorotate), samples with the fps filter and stops after maxFrames. Frames are read from its
 * stdout as they come; the consumer's pace is the backpressure (a paused pipe stalls ffmpeg),
 * so memory holds only the frames in flight, not the video.
 */
import { spawn } from 'node:child_process';
import { ApiError } from '../errors.js';
import { JpegSplitter } from './jpeg-splitter.js';

export type FramePixels = 'jpeg' | 'rgb24';

export interface DecodedFrame {
  /** Index among the sampled frames. */
  index: number;
  timeMs: number;
  width: number;
  height: number;
  pixels: FramePixels;
  data: Buffer;
}

export interface FrameSourceOptions {
  ffmpeg: string;
  file: string;
  /** Sampling rate (already capped at the source rate). */
  fps: number;
  maxFrames: number;
  /** Upright size of the frames (from the probe). */
  width: number;
  height: number;
  pixels: FramePixels;
  signal?: AbortSignal;
  /** JPEG quality for ffmpeg's -q:v (2 = best … 31). */
  jpegQuality?: number;
}

export function ffmpegArgs(o: FrameSourceOptions): string[] {
  const output =
    o.pixels === 'jpeg'
      ? ['-f', 'image2pipe', '-c:v', 'mjpeg', '-q:v', String(o.jpegQuality ?? 3), '-pix_fmt', 'yuvj420p']
      : ['-f', 'rawvideo', '-pix_fmt', 'rgb24'];
  return [
    '-hide_banner', '-loglevel', 'error', '-nostdin',
    '-i', o.file,
    '-map', '0:v:0', '-an', '-sn', '-dn',
    '-vf', `fps=${o.fps}`,
    '-frames:v', String(o.maxFrames),
    ...output,
    'pipe:1',
  ];
}

/**
 * Yields frames in order. Throws UNDECODABLE_VIDEO when ffmpeg fails before the first frame; a
 * failure after some frames ends the stream early (the caller sees fewer frames than expected
 * and the reason in `result.error`).
 */
export async function* extractFrames(
  o: FrameSourceOptions,
  result: { error?: string; stderr?: string } = {},
): AsyncGenerator<DecodedFrame> {
  const child = spawn(o.ffmpeg, ffmpegArgs(o), { stdio: ['ignore', 'pipe', 'pipe'], windowsHide: true });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (s: string) => {
    if (stderr.length < 8192) stderr += s;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  const kill = () => child.kill('SIGKILL');
  o.signal?.addEventListener('abort', kill, { once: true });

  const frameBytes = o.width * o.height * 3;
  const step = 1000 / o.fps;
  let index = 0;
  const make = (data: Buffer): DecodedFrame => ({
    index,
    timeMs: Math.round(index++ * step),
    width: o.width,
    height: o.height,
    pixels: o.pixels,
    data,
  });

  try {
    const splitter = o.pixels === 'jpeg' ? new JpegSplitter() : null;
    let raw: Buffer[] = [];
    let rawBytes = 0;
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
      if (splitter) {
        for (const jpeg of splitter.push(chunk)) yield make(jpeg);
      } else {
        raw.push(chunk);
        rawBytes += chunk.length;
        while (rawBytes >= frameBytes) {
          const all = Buffer.concat(raw, rawBytes);
          yield make(all.subarray(0, frameBytes));
          const rest = all.subarray(frameBytes);
          raw = rest.length ? [rest] : [];
          rawBytes = rest.length;
        }
      }
    }
    const outcome = await Promise.race([exited, spawnError.then((e) => ({ code: -1, signal: null, spawn: e }))]);
    if (o.signal?.aborted) return;
    if ('spawn' in outcome) {
      throw new Error(`could not start ffmpeg (${o.ffmpeg}): ${(outcome.spawn as Error).message}`);
    }
    result.stderr = stderr;
    if (outcome.code !== 0) {
      const reason = stderr.trim().split('\n').slice(-1)[0] || `ffmpeg exited with ${outcome.code ?? outcome.signal}`;
      if (index === 0) throw new ApiError('UNDECODABLE_VIDEO', `ffmpeg could not decode the video: ${clean(reason)}`);
      result.error = clean(reason);
    } else if (index === 0) {
      throw new ApiError('UNDECODABLE_VIDEO', 'ffmpeg decoded no frame from the video');
    }
  } finally {
    o.signal?.removeEventListener('abort', kill);
    if (child.exitCode === null && child.signalCode === null) kill();
  }
}

/** ffmpeg's messages name the input file; API errors must not carry absolute paths. */
function clean(line: string): string {
  return line.replace(/\/[^\s:'"]+/g, '<file>').slice(0, 300);
}
