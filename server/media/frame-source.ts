/**
 * Streams sampled frames out of a video with ffmpeg, while it is still decoding.
 *
 * ffmpeg runs with an argument array (never a shell), applies rotation metadata (its default
 * autorotate), samples by real timestamps (samplingFilter) and stops after maxFrames; each frame's
 * presentation time comes from ffmpeg's showinfo line on stderr. Frames are read as they
 * come, from a unix socket ffmpeg listens on (raw frames, where a socket directory is given) or
 * from its stdout; the consumer's pace is the backpressure (an unread socket or pipe stalls
 * ffmpeg), so memory holds only the frames in flight, not the video.
 */
import { spawn } from 'node:child_process';
import { unlink } from 'node:fs/promises';
import path from 'node:path';
import { ApiError } from '../errors.js';
import { JpegSplitter } from './jpeg-splitter.js';
import { MAX_SOCKET_PATH_BYTES, RawFrameSocket } from './raw-frame-socket.js';

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
  /**
   * rgb24: assemble every frame in one buffer, reused: a yielded frame's `data` is overwritten by the
   * next frame, so the consumer must be done with it before it pulls again (the pipeline's spool is:
   * it writes each frame's file first). No frame-sized allocation per frame: over the socket, no
   * allocation per frame at all (BENCHMARKS.md, "The remainder").
   */
  reuseFrameBuffer?: boolean;
  /**
   * rgb24: a private directory where ffmpeg may listen on a unix socket for the frames
   * (raw-frame-socket.ts: no per-read buffers). Without it, on Windows, or where the socket fails,
   * frames come over ffmpeg's stdout.
   */
  socketDir?: string;
  /** ffmpeg's -max_pixels: a decoder never allocates a larger frame (a stream that grows mid-way stops there). */
  maxPixels?: number;
  /** The video's duration (probe): with it, sparse sampling seeks instead of decoding everything (seekFrames). */
  durationMs?: number;
  /** MAX_DECODED_FRAMES, enforced while decoding: reading straight through stops there; a seek that runs past SEEK_TIMEOUT_MS ends the stream. */
  maxDecodedFrames?: number;
  /** Only this stretch of the sampled frames (a fan-out segment), up to maxFrames of them. */
  range?: FrameRange;
}

/**
 * A stretch of the frames one pass would sample, decoded on its own (a fan-out segment). Times are
 * the file's own, in seconds, from its packets (frame-times.ts). ffmpeg seeks to the keyframe before
 * the stretch and keeps the file's timestamps (-copyts); the filter keeps the stretch's frames by the
 * same rule, with sampling intervals and reported times counted from the video's first frame, so the
 * stretches laid end to end are the one pass, frame for frame.
 */
export interface FrameRange {
  /** The video's first frame. */
  t0S: number;
  /** The stretch's first sampled frame. */
  fromS: number;
  /** The next stretch's first sampled frame; null: to the end. */
  toS: number | null;
}

/**
 * How far before a range's first frame ffmpeg is asked to seek (it goes on back to the keyframe before
 * that), tried in turn: a seek that lands past the range's first frame (an MPEG-TS seeks by bytes and
 * can overshoot) is tried again from further back, at worst from the start (Infinity: no seek).
 */
const RANGE_SEEK_BACK_S = [0.5, 5, 30, Number.POSITIVE_INFINITY];

/** One seek may decode for this long (a file with one keyframe would decode from its start at every seek). */
export const SEEK_TIMEOUT_MS = 30_000;

/**
 * At or below this rate (one sample per 10 s or more) each sample is found by seeking, one short
 * ffmpeg run per sample, instead of decoding the whole file. A run costs ~0.15 s of start-up plus the
 * decode from the keyframe before the sample (x264's default GOP: up to ~8 s of frames); reading
 * straight through costs every frame. The issue's case, a 20-minute 1080p file at fps=0.001: 21 s of
 * decoding for one frame before, one seek now (BENCHMARKS.md, "Sparse sampling").
 */
export const SEEK_AT_OR_BELOW_FPS = 0.1;

export function usesSeeking(o: Pick<FrameSourceOptions, 'fps' | 'durationMs'>): boolean {
  return o.fps <= SEEK_AT_OR_BELOW_FPS && (o.durationMs ?? 0) > 0;
}

/** The rate frames are sampled at: the request's, capped at the video's (VideoInfo.maxFps). */
export function sampleRate(requested: number, video: { maxFps: number }): number {
  return video.maxFps > 0 ? Math.min(requested, video.maxFps) : requested;
}

/**
 * Frames ffmpeg would decode to sample `maxFrames` at `fps` from a video of `durationMs` at `sourceFps`:
 * the span read straight through, or, when seeking, SEEK_GOP_S of frames per seek. The caller bounds it
 * (MAX_DECODED_FRAMES), so no request can ask for hours of decoding to keep a handful of frames.
 */
export function plannedDecodes(o: { fps: number; maxFrames: number; durationMs: number; sourceFps: number }): number {
  // Unknown duration (a WebM from MediaRecorder has none): as long as the samples asked for. Unknown rate: the highest accepted.
  const spanS = o.durationMs > 0 ? Math.min(o.durationMs / 1000, o.maxFrames / o.fps) : o.maxFrames / o.fps;
  const rate = o.sourceFps > 0 ? o.sourceFps : UNKNOWN_SOURCE_FPS;
  if (usesSeeking(o)) {
    // Each seek decodes from the keyframe before it: counted as SEEK_GOP_S of frames (x264's default GOP is 250 frames,
    // ~8 s at 30 fps). A file with longer GOPs decodes more; REQUEST_TIMEOUT_MS / JOB_TIMEOUT_MS bound that.
    const samples = Math.min(o.maxFrames, Math.ceil(spanS * o.fps));
    return Math.ceil(samples * Math.min(spanS, SEEK_GOP_S) * rate);
  }
  return Math.ceil(spanS * rate);
}

/** Frames per second assumed where the probe found no rate (the highest fps a request may ask for). */
const UNKNOWN_SOURCE_FPS = 240;
/** Seconds of frames one seek is counted to decode (see plannedDecodes). */
const SEEK_GOP_S = 10;

/**
 * The first decoded frame (t = 0), then the first frame at or after each step of 1/fps: a frame is kept
 * when it falls in a later sampling interval than the last kept one. Unlike the fps filter, nothing is
 * dropped for falling between grid points (a one-frame clip gives its frame) and nothing is duplicated
 * (VFR gaps); showinfo reports each kept frame's time. Times start at the first frame (setpts).
 */
export function samplingFilter(fps: number, width: number, height: number, maxDecodedFrames?: number, range?: FrameRange): string {
  const bucket = (t: string) => `floor(${t}*${fps}+1e-4)`;
  if (range) {
    // Timestamps are the file's (-copyts): intervals count from the first frame, and only the range's frames pass.
    const from = `(t-${range.t0S})`;
    const prev = `(prev_selected_t-${range.t0S})`;
    const within = `gte(t,${range.fromS}-1e-4)${range.toS === null ? '' : `*lt(t,${range.toS}-1e-4)`}`;
    return `select='${within}*(isnan(prev_selected_t)+gt(${bucket(from)},${bucket(prev)}))',scale=${width}:${height},showinfo`;
  }
  // trim: no more decoded frames than MAX_DECODED_FRAMES, whatever the file's metadata claimed at
  // acceptance (a duration can lie); ffmpeg stops there. scale: every frame out has the probed size,
  // the one the reader cuts the byte stream by, even if the stream changes size mid-way (a passthrough when it does not).
  const trim = maxDecodedFrames ? `trim=end_frame=${maxDecodedFrames},` : '';
  return `${trim}setpts=PTS-STARTPTS,select='isnan(prev_selected_t)+gt(${bucket('t')},${bucket('prev_selected_t')})',scale=${width}:${height},showinfo`;
}

function outputFormat(o: FrameSourceOptions): string[] {
  return o.pixels === 'jpeg'
    ? ['-f', 'image2pipe', '-c:v', 'mjpeg', '-q:v', String(o.jpegQuality ?? 3), '-pix_fmt', 'yuvj420p']
    : ['-f', 'rawvideo', '-pix_fmt', 'rgb24'];
}

/**
 * ffmpeg's arguments up to its filters, for both ways of reading: log level info for showinfo's
 * per-frame lines (`level` tags each line so errors can be told apart), the decoder's pixel bound, the
 * input (from `seekS` with an accurate input seek), and its first video stream only.
 */
function inputArgs(o: FrameSourceOptions, seekS?: number, rangeBackS = RANGE_SEEK_BACK_S[0]): string[] {
  // A range seeks to a keyframe before it (no accurate seek: the filter picks its frames by their own timestamps).
  const range = !o.range
    ? []
    : Number.isFinite(rangeBackS)
      ? ['-noaccurate_seek', '-ss', Math.max(0, o.range.fromS - o.range.t0S - rangeBackS).toFixed(6), '-copyts']
      : ['-copyts'];
  return [
    '-hide_banner',
    '-loglevel',
    'level+info',
    '-nostats',
    '-nostdin',
    ...(o.maxPixels ? ['-max_pixels', String(o.maxPixels)] : []),
    ...(seekS === undefined ? [] : ['-ss', seekS.toFixed(6)]),
    ...range,
    '-i',
    o.file,
    '-map',
    '0:v:0',
    '-an',
    '-sn',
    '-dn',
  ];
}

/** One sample by seeking: the first frame at or after `atS` (ffmpeg's accurate input seek), its time from showinfo. */
export function seekArgs(o: FrameSourceOptions, atS: number): string[] {
  return [
    ...inputArgs(o, atS),
    // Output times start at the seek point: showinfo's time + atS is the frame's time in the file.
    '-vf',
    `scale=${o.width}:${o.height},showinfo`,
    '-frames:v',
    '1',
    ...outputFormat(o),
    'pipe:1',
  ];
}

export function ffmpegArgs(o: FrameSourceOptions, socketPath?: string | null, rangeBackS?: number): string[] {
  const format = outputFormat(o);
  const target = socketPath ? ['-listen', '1', `unix:${socketPath}`] : ['pipe:1'];
  return [
    ...inputArgs(o, undefined, rangeBackS),
    '-vf',
    samplingFilter(o.fps, o.width, o.height, o.maxDecodedFrames, o.range),
    '-vsync',
    'passthrough', // each selected frame once, at its own time (-fps_mode in ffmpeg ≥ 5.1; -vsync works from 4.x on)
    '-frames:v',
    String(o.maxFrames),
    ...format,
    ...target,
  ];
}

/** ffmpeg executables whose socket output failed where their stdout worked: they get the pipe from then on. */
const socketUnsupported = new Set<string>();

let socketCounter = 0;

/** Where ffmpeg should listen for this extraction, or null for its stdout. */
export function rawSocketPath(o: FrameSourceOptions, platform: NodeJS.Platform = process.platform): string | null {
  if (o.pixels !== 'rgb24' || !o.socketDir || platform === 'win32' || socketUnsupported.has(o.ffmpeg)) return null;
  const p = path.join(o.socketDir, `frames-${process.pid}-${++socketCounter}.sock`);
  return Buffer.byteLength(p) <= MAX_SOCKET_PATH_BYTES ? p : null;
}

/** What an extraction reports besides its frames. */
export interface FrameSourceOutcome {
  /** Set when ffmpeg stopped early after some frames (a damaged tail). */
  error?: string;
  stderr?: string;
  /** Set when the frame socket failed and the frames came over ffmpeg's stdout instead: why. */
  socketFallback?: string;
}

/**
 * Yields frames in order. Throws UNDECODABLE_VIDEO when ffmpeg fails before the first frame; a
 * failure after some frames ends the stream early (the caller sees fewer frames than expected
 * and the reason in `result.error`).
 */
export async function* extractFrames(o: FrameSourceOptions, result: FrameSourceOutcome = {}): AsyncGenerator<DecodedFrame> {
  if (o.range) yield* rangeFrames(o, o.range, result);
  else if (usesSeeking(o)) yield* seekFrames(o, result);
  else yield* onePass(o, result);
}

/** A range's frames: its first must be the range's first frame, or the seek overshot and is tried from further back. */
async function* rangeFrames(o: FrameSourceOptions, range: FrameRange, result: FrameSourceOutcome): AsyncGenerator<DecodedFrame> {
  const firstMs = Math.round((range.fromS - range.t0S) * 1000);
  for (const backS of RANGE_SEEK_BACK_S) {
    const frames = onePass(o, result, backS);
    const first = await frames.next();
    if (first.done) return;
    if (first.value.timeMs > firstMs + 1 && Number.isFinite(backS)) {
      await frames.return(undefined);
      continue;
    }
    yield first.value;
    yield* frames;
    return;
  }
}

/** The sampled frames of one ffmpeg run, read as they are decoded (a range from `rangeBackS` before it). */
async function* onePass(o: FrameSourceOptions, result: FrameSourceOutcome, rangeBackS?: number): AsyncGenerator<DecodedFrame> {
  let index = 0;
  /** The next frame: its time from the ffmpeg run that decoded it. */
  const make = async (times: FrameTimes, data: Buffer): Promise<DecodedFrame> => {
    const i = index++;
    return { index: i, timeMs: await times.at(i, o.fps, o.range?.t0S), width: o.width, height: o.height, pixels: o.pixels, data };
  };

  const socketPath = rawSocketPath(o);
  if (socketPath) {
    const reader = new RawFrameSocket(o.width * o.height * 3, o.reuseFrameBuffer ?? false);
    const run = startFfmpeg(o, ffmpegArgs(o, socketPath, rangeBackS));
    try {
      let exited = false;
      void run.outcome.then(() => (exited = true));
      if (await reader.connect(socketPath, () => exited || (o.signal?.aborted ?? false))) {
        for await (const data of reader.frames()) yield await make(run.times, data);
        settle(await run.outcome, index, o, result);
        return;
      }
      if (o.signal?.aborted) return;
      if (reader.connectError) {
        result.socketFallback = `could not connect to ffmpeg's socket: ${(reader.connectError as NodeJS.ErrnoException).code ?? reader.connectError.message}`;
      } else {
        // ffmpeg exited before it listened. ffmpeg names the URL it failed on: where that is not the
        // socket, the input is at fault (or ffmpeg would not start), and the pipe would fail the same way.
        const outcome = await run.outcome;
        if (!outcome.stderr.includes(socketPath)) return settle(outcome, 0, o, result);
        result.socketFallback = `ffmpeg could not listen on a unix socket: ${clean(outcome.stderr.trim().split('\n').slice(-1)[0] ?? '')}`;
      }
    } finally {
      reader.close();
      run.dispose();
      await unlink(socketPath).catch(() => undefined);
    }
    // The socket itself failed (no unix protocol in this ffmpeg build, a bind or connect error): the
    // same video over stdout, and where that works this ffmpeg gets the pipe from now on.
  }

  const run = startFfmpeg(o, ffmpegArgs(o, null, rangeBackS));
  try {
    for await (const data of pipeFrames(run.stdout, o)) yield await make(run.times, data);
    settle(await run.outcome, index, o, result);
    if (socketPath && index > 0) socketUnsupported.add(o.ffmpeg);
  } finally {
    run.dispose();
  }
}

/**
 * Sparse sampling: for each sample time k / fps (k from 0, within the duration, at most maxFrames)
 * one ffmpeg run seeks there and outputs one frame. A frame found past the next sample times (a gap
 * in a VFR clip) covers them: the next seek starts at the first grid time after it, so no frame
 * comes twice. Times are from the file's start (the linear path's are from the first frame, which
 * is the same instant for nearly every file).
 */
async function* seekFrames(o: FrameSourceOptions, result: FrameSourceOutcome): AsyncGenerator<DecodedFrame> {
  const durationS = (o.durationMs ?? 0) / 1000;
  let index = 0;
  let k = 0;
  while (index < o.maxFrames && k / o.fps < durationS && !o.signal?.aborted) {
    const atS = k / o.fps;
    const run = startFfmpeg(o, seekArgs(o, atS));
    let got: Buffer | null = null;
    const watchdog = setTimeout(() => run.dispose(), SEEK_TIMEOUT_MS);
    try {
      for await (const data of pipeFrames(run.stdout, o)) got ??= Buffer.from(data);
      const outcome = await run.outcome;
      if (!got) {
        // Nothing at or after this time: the end of the stream (or ffmpeg failed: before the first
        // frame that is UNDECODABLE_VIDEO, after it the stream ends early with the reason in result.error).
        settle(outcome, index, o, result);
        break;
      }
      const timeMs = Math.round(atS * 1000 + (await run.times.at(0, o.fps)));
      yield { index: index++, timeMs, width: o.width, height: o.height, pixels: o.pixels, data: got };
      k = Math.max(k + 1, Math.floor((timeMs / 1000) * o.fps + 1e-4) + 1);
    } finally {
      clearTimeout(watchdog);
      run.dispose();
    }
  }
}

interface FfmpegOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  spawnError?: Error;
  stderr: string;
}

/**
 * The sampled frames' presentation times, in ms from the first frame, read from showinfo's lines as
 * ffmpeg writes them. showinfo logs a frame before ffmpeg writes it out, so a frame's time is on its
 * way when its pixels arrive; at() waits for it (or, should ffmpeg exit without it, uses the grid).
 */
class FrameTimes {
  private readonly times: number[] = [];
  private waiters: (() => void)[] = [];
  private ended = false;

  push(seconds: number): void {
    this.times.push(seconds);
    this.wake();
  }

  end(): void {
    this.ended = true;
    this.wake();
  }

  /**
   * Frame i's time in ms from `originS` (the file's timestamps kept: a range's first frame); the grid's (i / fps)
   * where showinfo's line does not come within `waitMs` (a log format this parser does not know).
   */
  async at(i: number, fps: number, originS = 0, waitMs = 2000): Promise<number> {
    const deadline = Date.now() + waitMs;
    while (this.times.length <= i && !this.ended && Date.now() < deadline) {
      await new Promise<void>((r) => {
        const timer = setTimeout(r, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(timer);
          r();
        });
      });
    }
    const t = this.times[i];
    return t === undefined ? Math.round((i * 1000) / fps) : Math.max(0, Math.round((t - originS) * 1000));
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const r of w) r();
  }
}

/** showinfo's line for one frame: `[Parsed_showinfo_2 @ 0x…] [info] n:   0 pts:      0 pts_time:0 …`. */
const SHOWINFO_FRAME = /^\[Parsed_showinfo_\d+ @ [^\]]+\] \[info\] n:\s*\d+ pts:\s*(-?\d+) pts_time:(-?[\d.e+-]+)/;
/** showinfo's input time base (`config in time_base: 1/15360, …`): pts × time base is exact, pts_time has 6 digits. */
const SHOWINFO_TIME_BASE = /^\[Parsed_showinfo_\d+ @ [^\]]+\] \[info\] config in time_base: (\d+)\/(\d+)/;
/** Lines at these levels are not kept; everything else (errors, and any untagged text) is. */
const NOT_AN_ERROR = /\[(info|verbose|debug|trace|warning)\] /;
const LEVEL_TAG = /\[(error|fatal|panic)\] /;

interface FfmpegRun {
  stdout: NodeJS.ReadableStream;
  times: FrameTimes;
  outcome: Promise<FfmpegOutcome>;
  /** Stops listening for the abort signal; kills ffmpeg if it still runs (the consumer stopped early). */
  dispose(): void;
}

function startFfmpeg(o: FrameSourceOptions, args: string[]): FfmpegRun {
  // No colour codes around the log lines, whatever the environment asks (AV_LOG_FORCE_COLOR): they are parsed.
  const env: NodeJS.ProcessEnv = { ...process.env, AV_LOG_FORCE_NOCOLOR: '1' };
  delete env.AV_LOG_FORCE_COLOR;
  const child = spawn(o.ffmpeg, args, { stdio: ['ignore', 'pipe', 'pipe'], windowsHide: true, env });
  const times = new FrameTimes();
  let timeBase: [number, number] | null = null;
  let stderr = '';
  let partial = '';
  const line = (text: string) => {
    const frame = SHOWINFO_FRAME.exec(text);
    const base = frame ? null : SHOWINFO_TIME_BASE.exec(text);
    if (frame) times.push(timeBase ? (Number(frame[1]) * timeBase[0]) / timeBase[1] : Number(frame[2]));
    else if (base && Number(base[2]) > 0) timeBase = [Number(base[1]), Number(base[2])];
    else if (text && !NOT_AN_ERROR.test(text) && stderr.length < 8192) stderr += `${text.replace(LEVEL_TAG, '')}\n`;
  };
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (s: string) => {
    const lines = (partial + s).split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) line(l);
  });
  const outcome = new Promise<FfmpegOutcome>((resolve) => {
    child.once('close', (code, signal) => {
      if (partial) line(partial);
      times.end();
      resolve({ code, signal, stderr });
    });
    child.once('error', (spawnError) => {
      times.end();
      resolve({ code: -1, signal: null, spawnError, stderr });
    });
  });
  const kill = () => child.kill('SIGKILL');
  o.signal?.addEventListener('abort', kill, { once: true });
  return {
    stdout: child.stdout,
    times,
    outcome,
    dispose: () => {
      o.signal?.removeEventListener('abort', kill);
      if (child.exitCode === null && child.signalCode === null) kill();
    },
  };
}

/** Frames from ffmpeg's stdout: JPEGs split at their markers, or raw frames assembled chunk by chunk. */
async function* pipeFrames(stdout: NodeJS.ReadableStream, o: FrameSourceOptions): AsyncGenerator<Buffer> {
  if (o.pixels === 'jpeg') {
    const splitter = new JpegSplitter();
    for await (const chunk of stdout as AsyncIterable<Buffer>) yield* splitter.push(chunk);
    return;
  }
  // Each frame is copied straight from the pipe's chunks into its frame buffer (its own, or the
  // reused one): no concatenated intermediate, and no chunk kept alive past its frame.
  const frameBytes = o.width * o.height * 3;
  let frame: Buffer | null = null;
  let filled = 0;
  for await (const chunk of stdout as AsyncIterable<Buffer>) {
    let offset = 0;
    while (offset < chunk.length) {
      frame ??= Buffer.allocUnsafeSlow(frameBytes);
      const n = chunk.copy(frame, filled, offset, Math.min(chunk.length, offset + frameBytes - filled));
      filled += n;
      offset += n;
      if (filled === frameBytes) {
        const done = frame;
        if (!o.reuseFrameBuffer) frame = null;
        filled = 0;
        yield done;
      }
    }
  }
}

/** Turns ffmpeg's exit into the stream's outcome, once its frames are all read. */
function settle(outcome: FfmpegOutcome, frames: number, o: FrameSourceOptions, result: FrameSourceOutcome): void {
  if (o.signal?.aborted) return;
  if (outcome.spawnError) throw new Error(`could not start ffmpeg (${o.ffmpeg}): ${outcome.spawnError.message}`);
  result.stderr = outcome.stderr;
  if (outcome.code !== 0) {
    const reason = outcome.stderr.trim().split('\n').slice(-1)[0] || `ffmpeg exited with ${outcome.code ?? outcome.signal}`;
    if (frames === 0) throw new ApiError('UNDECODABLE_VIDEO', `ffmpeg could not decode the video: ${clean(reason)}`);
    result.error = clean(reason);
  } else if (frames === 0) {
    throw new ApiError('UNDECODABLE_VIDEO', 'ffmpeg decoded no frame from the video');
  }
}

/** ffmpeg's messages name the input file; API errors must not carry absolute paths. */
function clean(line: string): string {
  return line.replace(/\/[^\s:'"]+/g, '<file>').slice(0, 300);
}
