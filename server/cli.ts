#!/usr/bin/env node
/**
 * posepool's command line: pose a video file with the same worker pool and pipeline as the
 * server, without HTTP. The JSON on stdout is the synchronous route's 200 body.
 *
 *   npx posepool pose video.mp4 > poses.json
 *
 * Configuration is the server's (POSE_MODEL, POSE_WORKERS, POSE_DEVICE, … and .env). A progress
 * bar goes to stderr when stderr is a terminal. Exit codes: 0 done (frames that could not be posed
 * carry `error` in the JSON), 1 the video or the workers failed, 2 bad usage or configuration,
 * 130 interrupted.
 */
import { randomUUID } from 'node:crypto';
import { createWriteStream, existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import type { FastifyBaseLogger } from 'fastify';
import { pino } from 'pino';
import { type Config, ConfigError, loadConfig, loadDotEnv, REPO_ROOT } from './config.js';
import { createPool } from './create-pool.js';
import { isApiError } from './errors.js';
import { sampleRate } from './media/frame-source.js';
import { probeVideo } from './media/probe.js';
import type { PoseResponse } from './pipeline/pose-response.js';
import { expectedFrames } from './pipeline/pose-video.js';
import { poseVideoRequest, unavailableError } from './pipeline/pose-video-request.js';
import { resolveMediaTools } from './runtime/ffmpeg-path.js';
import { readPythonChoice } from './runtime/python-choice.js';
import { type PoseRequestFields, parseFields } from './upload/fields.js';
import { withTempDir } from './upload/temp-dir.js';

const USAGE = `usage: posepool pose <video> [options] > poses.json

Poses every sampled frame of a video with posepool's worker pool (no server needed) and writes the
JSON result (the body of POST /api/upload-video-with-pose) to stdout.

options:
  --fps <n>            frames sampled per second of video (default 10, capped at the source rate)
  --max-frames <n>     cap on sampled frames (default 300, at most MAX_FRAMES_LIMIT)
  --role <label>       label echoed in the result (default rider)
  --no-tracking        MoveNet: pose each frame letterboxed, without the crop from the frame before
  --no-smoothing       no one-euro smoothing of keypoints over time
  --metrics            coaching angles per frame and their min/mean/max (knees, hips and shoulders to the board, torso, stance)
  -o, --output <file>  write the JSON there instead of stdout
  --pretty             indent the JSON
  -q, --quiet          no progress bar and no summary line on stderr
  -h, --help           this help
  -v, --version        the version

configuration: the server's environment variables (POSE_MODEL, POSE_WORKERS, POSE_DEVICE,
POSE_BATCH_SIZE, POSE_PYTHON, …; a .env file is read too). Failures are reported in one line; set
LOG_LEVEL=info (or warn, debug) to see the pool's log on stderr (JSON lines).`;

class UsageError extends Error {}
class Interrupted extends Error {
  constructor() {
    super('interrupted');
  }
}

function die(code: number, message: string): never {
  process.stderr.write(`posepool: ${message}\n`);
  process.exit(code);
}

/** The command line, as node:util parseArgs reads it (it throws on an unknown option or a missing value). */
function parseCliArgs(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      fps: { type: 'string' },
      'max-frames': { type: 'string' },
      role: { type: 'string' },
      'no-tracking': { type: 'boolean' },
      'no-smoothing': { type: 'boolean' },
      metrics: { type: 'boolean' },
      output: { type: 'string', short: 'o' },
      pretty: { type: 'boolean' },
      quiet: { type: 'boolean', short: 'q' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
    },
  });
}

async function main(argv: string[]): Promise<void> {
  let parsed: ReturnType<typeof parseCliArgs>;
  try {
    parsed = parseCliArgs(argv);
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n\n${USAGE}`);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (values.version) {
    process.stdout.write(`${(JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version}\n`);
    return;
  }
  const [command, file, ...rest] = positionals;
  if (command !== 'pose' || !file || rest.length > 0) {
    throw new UsageError(command && command !== 'pose' ? `unknown command "${command}"\n\n${USAGE}` : USAGE);
  }
  if (!existsSync(file) || !statSync(file).isFile()) throw new UsageError(`no such file: ${file}`);

  loadDotEnv();
  let config: Config;
  try {
    config = loadConfig(process.env, { pythonChoice: () => readPythonChoice() });
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(`configuration error: ${err.message}`);
    throw err;
  }
  const form: Record<string, string> = {};
  if (values.fps !== undefined) form.fps = values.fps;
  if (values['max-frames'] !== undefined) form.maxFrames = values['max-frames'];
  if (values.role !== undefined) form.role = values.role;
  if (values['no-tracking']) form.tracking = 'false';
  if (values['no-smoothing']) form.smoothing = 'false';
  if (values.metrics) form.metrics = 'true';
  let fields: PoseRequestFields;
  try {
    fields = parseFields(form, config);
  } catch (err) {
    const field = isApiError(err) ? String(err.details.field ?? '') : '';
    const option = field === 'maxFrames' ? '--max-frames' : `--${field}`;
    throw new UsageError(`${option}: ${(err as Error).message}`);
  }

  const quiet = Boolean(values.quiet);
  const tty = !quiet && process.stderr.isTTY === true;
  const logger = pino({ level: process.env.LOG_LEVEL?.trim() || 'silent', base: { service: 'posepool-cli' } }, pino.destination(2));
  const tools = (() => {
    try {
      const found = resolveMediaTools();
      return { ffmpeg: found.ffmpeg.path, ffprobe: found.ffprobe.path };
    } catch (err) {
      throw new UsageError(`${(err as Error).message} (set FFMPEG_PATH / FFPROBE_PATH, or run \`npm run setup\`)`);
    }
  })();

  const video = await probeVideo(tools.ffprobe, path.resolve(file), { maxPixels: config.maxPixels });
  const expected = expectedFrames(video, sampleRate(fields.fps, video), fields.maxFrames);

  const pool = createPool(config, logger.child({ component: 'pool' }));
  const abort = new AbortController();
  const interrupt = () => abort.abort(new Interrupted());
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  const started = performance.now();
  let bar: cliProgress.SingleBar | null = null;
  try {
    if (tty) process.stderr.write(`posepool: starting ${config.workers} worker(s) with ${config.model}…\n`);
    pool.start();
    await untilUsable(pool, config.startupTimeoutMs, abort.signal);
    if (tty) {
      bar = new cliProgress.SingleBar(
        {
          format: 'posing [{bar}] {value}/{total} frames | {duration_formatted} elapsed | {eta_formatted} left',
          stream: process.stderr,
          hideCursor: true,
          etaBuffer: 20,
        },
        cliProgress.Presets.shades_classic,
      );
      bar.start(expected, 0);
    }
    const response = await withTempDir(
      (tempDir) =>
        poseVideoRequest(
          {
            id: randomUUID(),
            file: path.resolve(file),
            fields,
            video,
            signal: abort.signal,
            log: logger as unknown as FastifyBaseLogger,
            started,
            onProgress: (done, total) => {
              bar?.setTotal(total);
              bar?.update(done);
            },
          },
          { pool, config, ffmpeg: tools.ffmpeg, tempDir },
        ),
      config.tempDir,
    );
    bar?.stop();
    bar = null;
    await writeJson(response, values.output, Boolean(values.pretty));
    if (!quiet) process.stderr.write(`posepool: ${summaryLine(response)}${values.output ? ` → ${values.output}` : ''}\n`);
  } finally {
    bar?.stop();
    await pool.close({ graceMs: 2000 });
  }
}

/** Resolves once a worker is ready; rejects at once with the cause when every worker is failing to start. */
async function untilUsable(pool: ReturnType<typeof createPool>, timeoutMs: number, signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs + 5000;
  for (;;) {
    if (signal.aborted) throw signal.reason;
    if (pool.isAvailable()) return;
    if (pool.health().status === 'unavailable' && pool.lastErrors().length > 0) throw unavailableError(pool);
    if (Date.now() > deadline) throw unavailableError(pool);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function summaryLine(r: PoseResponse): string {
  const s = r.summary;
  const failed = s.framesFailed > 0 ? `, ${s.framesFailed} failed (see frames[].error)` : '';
  return `${s.framesWithPose}/${s.framesSampled} frames with a pose${failed} in ${(s.elapsedMs / 1000).toFixed(1)} s (${r.model.name} on ${r.model.device})`;
}

async function writeJson(response: PoseResponse, output: string | undefined, pretty: boolean): Promise<void> {
  const text = `${JSON.stringify(response, null, pretty ? 2 : undefined)}\n`;
  const stream = output ? createWriteStream(output) : process.stdout;
  await new Promise<void>((resolve, reject) => {
    stream.once('error', reject);
    if (output) stream.end(text, () => resolve());
    else stream.write(text, (err) => (err ? reject(err) : resolve()));
  });
}

// On success the process ends by itself once the pool is closed (stdout is flushed by then).
main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof UsageError) die(2, err.message);
  if (err instanceof Interrupted) die(130, 'interrupted');
  if (isApiError(err)) {
    const cause = err.details.lastError as { hint?: string } | null | undefined;
    die(1, `${err.code}: ${err.message}${cause?.hint && !err.message.includes('Fix:') ? ` Fix: ${cause.hint}` : ''}`);
  }
  die(1, `fatal: ${(err as Error)?.stack ?? String(err)}`);
});
