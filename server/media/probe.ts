/**
 * What is in an uploaded file: ffprobe's JSON, reduced to the contract's `video` object, and the
 * verdict NOT_A_VIDEO (415: empty, unrecognised, still images, audio only) or UNDECODABLE_VIDEO
 * (422: a recognised video container that cannot be read, e.g. a truncated MP4 without moov).
 */
import { execFile } from 'node:child_process';
import { open } from 'node:fs/promises';
import { ApiError } from '../errors.js';

export interface VideoInfo {
  /** Upright, displayed size (rotation applied). */
  width: number;
  height: number;
  durationMs: number;
  /** Source frame rate (ffprobe's average). */
  fps: number;
  /** The rate requests are capped at: the larger of the average and the stream's base rate, so a
   * variable-rate clip's fast stretches are not undersampled. */
  maxFps: number;
  /** Clockwise degrees the stored frames are turned for display (0, 90, 180, 270). */
  rotation: number;
  codec: string;
  /** Frames in the stream when the container says so. */
  frameCount: number | null;
}

interface FfprobeStream {
  codec_type?: string;
  codec_name?: string;
  width?: number;
  height?: number;
  avg_frame_rate?: string;
  r_frame_rate?: string;
  duration?: string;
  nb_frames?: string;
  tags?: Record<string, string>;
  side_data_list?: { side_data_type?: string; rotation?: number }[];
  disposition?: { attached_pic?: number };
}

interface FfprobeOutput {
  streams?: FfprobeStream[];
  format?: { format_name?: string; duration?: string };
}

/** Codecs that are single pictures, not motion video. */
const STILL_IMAGE_CODECS = new Set([
  'png',
  'bmp',
  'tiff',
  'webp',
  'jpegls',
  'jpeg2000',
  'pam',
  'ppm',
  'pgm',
  'pbm',
  'sgi',
  'targa',
  'qoi',
  'exr',
]);
const IMAGE_FORMATS = /(^|,)(image2|[a-z0-9]+_pipe|png|apng|gif)(,|$)/;

/** Pixels per frame a decoder may allocate: ffmpeg's own -max_pixels, and the API's FRAME_TOO_LARGE. */
export interface ProbeLimits {
  /** 0: no limit. */
  maxPixels: number;
  timeoutMs?: number;
}

/** ffmpeg's words when a decoder refuses a frame over -max_pixels. */
const OVER_MAX_PIXELS = /Picture size (\d+)x(\d+) exceeds specified max pixel count/;

export function tooManyPixels(width: number, height: number, maxPixels: number): ApiError {
  return new ApiError(
    'FRAME_TOO_LARGE',
    `the video's frames are ${width}x${height} (${width * height} pixels), over MAX_PIXELS (${maxPixels})`,
    { details: { width, height, maxPixels } },
  );
}

export async function probeVideo(ffprobe: string, file: string, limits: ProbeLimits = { maxPixels: 0 }): Promise<VideoInfo> {
  const head = await readHead(file, 64);
  if (head.length === 0) throw new ApiError('NOT_A_VIDEO', 'the uploaded file is empty');

  let out: FfprobeOutput;
  try {
    // -max_pixels bounds what ffprobe's decoder may allocate for its look at the first frame.
    const bound = limits.maxPixels > 0 ? ['-max_pixels', String(limits.maxPixels)] : [];
    const stdout = await run(
      ffprobe,
      ['-v', 'error', ...bound, '-print_format', 'json', '-show_format', '-show_streams', file],
      limits.timeoutMs ?? 30_000,
    );
    out = JSON.parse(stdout) as FfprobeOutput;
  } catch (err) {
    const reason = err instanceof ProbeError ? err.stderr : String(err);
    const over = OVER_MAX_PIXELS.exec(reason);
    if (over) throw tooManyPixels(Number(over[1]), Number(over[2]), limits.maxPixels);
    if (looksLikeVideoContainer(head)) {
      throw new ApiError('UNDECODABLE_VIDEO', `the video container could not be read (${firstLine(reason)})`);
    }
    throw new ApiError('NOT_A_VIDEO', 'the file is not in a video format ffmpeg recognises');
  }

  const streams = out.streams ?? [];
  const video = streams.find((s) => s.codec_type === 'video' && !s.disposition?.attached_pic);
  if (!video) {
    const hasAudio = streams.some((s) => s.codec_type === 'audio');
    throw new ApiError('NOT_A_VIDEO', hasAudio ? 'the file has audio but no video stream' : 'the file has no video stream');
  }
  const formatName = out.format?.format_name ?? '';
  const codec = video.codec_name ?? 'unknown';
  const frameCount = video.nb_frames ? Number(video.nb_frames) : null;
  if (STILL_IMAGE_CODECS.has(codec) || (IMAGE_FORMATS.test(formatName) && (frameCount ?? 1) <= 1)) {
    throw new ApiError('NOT_A_VIDEO', `the file is a still image (${codec}), not a video`);
  }
  if (!video.width || !video.height) {
    throw new ApiError('UNDECODABLE_VIDEO', `the video stream (${codec}) has no frame size; ffmpeg cannot decode it`);
  }

  if (limits.maxPixels > 0 && video.width * video.height > limits.maxPixels)
    throw tooManyPixels(video.width, video.height, limits.maxPixels);

  const rotation = rotationOf(video);
  const turned = rotation === 90 || rotation === 270;
  const fps = parseRate(video.avg_frame_rate) || parseRate(video.r_frame_rate) || 0;
  const baseRate = parseRate(video.r_frame_rate);
  // A VFR stream's own duration can end before its last frame (an MP4's edit of the first frames'
  // durations): the longer of the stream's and the container's.
  const durationS = Math.max(Number(video.duration ?? 0) || 0, Number(out.format?.duration ?? 0) || 0) || NaN;
  return {
    width: turned ? video.height : video.width,
    height: turned ? video.width : video.height,
    durationMs: Number.isFinite(durationS) ? Math.round(durationS * 1000) : 0,
    fps: Math.round(fps * 1000) / 1000,
    maxFps: Math.round(Math.max(fps, baseRate > 0 && baseRate <= 240 ? baseRate : 0) * 1000) / 1000,
    rotation,
    codec,
    frameCount: frameCount !== null && Number.isFinite(frameCount) ? frameCount : null,
  };
}

/** Display rotation, clockwise, normalised to 0/90/180/270 (display matrix or the old `rotate` tag). */
export function rotationOf(stream: FfprobeStream): number {
  const matrix = stream.side_data_list?.find((d) => typeof d.rotation === 'number');
  // The display matrix's rotation is counter-clockwise; the old tag is clockwise.
  const deg = matrix ? -Number(matrix.rotation) : Number(stream.tags?.rotate ?? 0);
  const norm = (((Math.round(deg / 90) * 90) % 360) + 360) % 360;
  return Number.isFinite(norm) ? norm : 0;
}

function parseRate(rate: string | undefined): number {
  if (!rate) return 0;
  const [n, d] = rate.split('/').map(Number);
  if (!d) return n || 0;
  return n / d;
}

/** Magic numbers of the containers people upload; used only to tell 415 from 422 when ffprobe fails. */
export function looksLikeVideoContainer(head: Buffer): boolean {
  const ascii = (start: number, end: number) => head.subarray(start, end).toString('latin1');
  if (head.length >= 8 && ascii(4, 8) === 'ftyp') return true; // MP4 / MOV / 3GP
  if (head.length >= 8 && ['moov', 'mdat', 'wide', 'free'].includes(ascii(4, 8))) return true; // QuickTime atoms
  if (ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'AVI ') return true;
  if (head.readUInt32BE?.(0) === 0x1a45dfa3) return true; // Matroska / WebM
  if (ascii(0, 3) === 'FLV') return true;
  if (ascii(0, 4) === 'OggS') return true;
  if (head[0] === 0x47 && head.length > 188 && head[188] === 0x47) return true; // MPEG-TS
  if (head.length >= 4 && head.readUInt32BE(0) === 0x000001ba) return true; // MPEG-PS
  if (head.length >= 16 && head.subarray(0, 16).equals(Buffer.from('3026b2758e66cf11a6d900aa0062ce6c', 'hex'))) return true; // ASF/WMV
  return false;
}

async function readHead(file: string, n: number): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(Math.max(n, 200));
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

class ProbeError extends Error {
  constructor(readonly stderr: string) {
    super(stderr);
  }
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, windowsHide: true }, (err, stdout, stderr) => {
      if (err) reject(new ProbeError(String(stderr || err.message)));
      else resolve(stdout);
    });
  });
}

function firstLine(s: string): string {
  const line = s.split('\n').find((l) => l.trim()) ?? 'unknown error';
  // ffprobe prefixes lines with the file path: keep only the message.
  return line
    .replace(/^.*?:\s(?=[A-Za-z])/, '')
    .trim()
    .slice(0, 200);
}
