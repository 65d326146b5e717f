/**
 * Configuration from the environment (and an optional .env file), validated once at start-up.
 * Bad values throw ConfigError naming the variable; main.ts prints that one line and exits.
 */
import { existsSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FrameEncoding } from '../protocol/index.js';
import { MODEL_NAMES, PROTOCOL } from '../protocol/index.js';
import { type AllowedHost, parseAllowedHosts } from './jobs/webhook-target.js';

/** The repository root (this file lives in server/ or dist/server/). */
export const REPO_ROOT = findRepoRoot(path.dirname(fileURLToPath(import.meta.url)));
export const SERVICE_DIR = path.join(REPO_ROOT, 'pose-service');

function findRepoRoot(start: string): string {
  let dir = start;
  for (;;) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'pose-service'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) return path.resolve(start, '..');
    dir = parent;
  }
}

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
  }
}

export interface Config {
  port: number;
  host: string;
  /** Resolved worker count, and what was asked for. */
  workers: number;
  workersSetting: string;
  threads: number;
  model: string;
  device: string;
  batchSize: number;
  python: string;
  /** Where the interpreter choice came from: "POSE_PYTHON", the set-up's record, or a fallback. */
  pythonSource: string;
  modelsDir: string;
  startupTimeoutMs: number;
  batchTimeoutMs: number;
  maxUploadBytes: number;
  /** Pixels per frame (width × height) a video may have: FRAME_TOO_LARGE at probe, and ffmpeg's -max_pixels. */
  maxPixels: number;
  /** Frames one request may make ffmpeg decode (reading straight through): BAD_FIELD beyond. */
  maxDecodedFrames: number;
  logLevel: string;
  /** /health answers 200 from this many ready workers. */
  minReady: number;
  /** Upper bound a request's maxFrames may ask for. */
  maxFramesLimit: number;
  defaultFps: number;
  defaultMaxFrames: number;
  /** How frames travel to workers. */
  transport: FrameEncoding;
  /** Videos processed at once; more wait in a queue of maxQueuedVideos, beyond that BUSY. */
  maxActiveVideos: number;
  maxQueuedVideos: number;
  /** Processing bound, from the upload's last byte to the answer (504 TIMEOUT past it). */
  requestTimeoutMs: number;
  /** Uploads whose bodies are being received at once (separate from processing); beyond, BUSY. */
  maxActiveUploads: number;
  /** How an upload's body must arrive (server/upload/body-watch.ts): 408 UPLOAD_TIMEOUT otherwise. */
  upload: { timeoutMs: number; minBytesPerS: number; rateWindowMs: number };
  /** SIGTERM: how long in-flight requests may take to finish. */
  shutdownGraceMs: number;
  /** Parent of the per-request private temporary directories. */
  tempDir: string;
  /** Optional bearer token for the upload route. */
  apiToken: string | null;
  /** Restart backoff: first delay, doubling up to the cap. */
  backoffInitialMs: number;
  backoffMaxMs: number;
  /** Extra environment for worker processes (e.g. POSE_SYNTHETIC_FAULTS for the test double). */
  workerEnv: Record<string, string>;
  /** Limits of the jobs API (POST /api/jobs). */
  jobs: JobsConfig;
  /** Resumable (tus) uploads at /api/uploads. */
  resumable: ResumableConfig;
  /** Signed webhooks of finished jobs (a job's callbackUrl). */
  webhooks: WebhooksConfig;
}

/** tus uploads: where their bytes wait for a job, and how long. */
export interface ResumableConfig {
  /** POSE_STORAGE_DIR/uploads (any replica can take a finished upload), else a folder under POSE_TEMP_DIR. */
  dir: string;
  /** UPLOAD_EXPIRY_S: an upload, finished or not, is removed this long after its creation unless a job took it. */
  expiryMs: number;
}

/** Where and how a finished job's webhook is sent (server/jobs/webhooks.ts). */
export interface WebhooksConfig {
  /** WEBHOOK_SECRET: the HMAC-SHA256 key of every signature; null: callbackUrl is refused (nothing is sent unsigned). */
  secret: string | null;
  /** WEBHOOK_ALLOWED_HOSTS: the hosts a callbackUrl may name; empty: callbackUrl is refused. */
  allowedHosts: AllowedHost[];
  /** WEBHOOK_ALLOW_PRIVATE: an allowed name may resolve to a loopback, private or link-local address. */
  allowPrivate: boolean;
  /** One attempt: connect, send, and the answer's status line and headers. */
  timeoutMs: number;
  /** Attempts of one event, the first included. */
  maxAttempts: number;
  /** Delay before the second attempt, doubling after each, capped. */
  backoffInitialMs: number;
  backoffMaxMs: number;
}

/** Jobs live in memory: their count, each result's size and a finished job's lifetime are bounded. */
export interface JobsConfig {
  /** Jobs held at once, finished ones included (the oldest finished is dropped first). */
  maxJobs: number;
  /** How long a finished job (and its result) is kept. */
  ttlMs: number;
  /** A result whose JSON is larger fails the job with RESULT_TOO_LARGE. */
  resultMaxBytes: number;
  /** A job still unfinished this long after it was accepted fails with TIMEOUT. */
  timeoutMs: number;
  /** REDIS_URL: jobs on BullMQ (durable, shared by every replica); null: in this process's memory. */
  redisUrl: string | null;
  /** POSE_STORAGE_DIR: the folder every replica mounts for uploads, checkpoints and results (required with REDIS_URL). */
  storageDir: string | null;
  /** A running job's lock; a replica that stops renewing it (killed) loses the job to another after this. */
  lockMs: number;
  /** How often each replica looks for jobs whose lock expired. */
  stalledIntervalMs: number;
  /** Lock expiries a job survives before it fails (a video that kills every replica that runs it). */
  maxStalls: number;
  /** With REDIS_URL, a video sampling more frames is posed as segments of this many (whole batches), spread over the replicas. */
  segmentFrames: number;
}

export interface ConfigContext {
  cores?: number;
  /** Reads the set-up's recorded interpreter choice (server/runtime/python-choice.ts). */
  pythonChoice?: () => { python: string; cudaDeviceCount?: number } | null;
}

/** Loads `.env` from the working directory when present, without overriding the real environment. */
export function loadDotEnv(file = path.resolve('.env')): void {
  if (!existsSync(file)) return;
  const loadEnvFile = (process as unknown as { loadEnvFile?: (p: string) => void }).loadEnvFile;
  if (loadEnvFile) {
    const before = { ...process.env };
    loadEnvFile(file);
    Object.assign(process.env, before);
  }
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, ctx: ConfigContext = {}): Config {
  const cores = ctx.cores ?? os.availableParallelism?.() ?? os.cpus().length;
  const choice = ctx.pythonChoice?.() ?? null;

  const model = str(env, 'POSE_MODEL', 'movenet-thunder');
  const known = MODEL_NAMES;
  if (!known.includes(model)) {
    throw new ConfigError('POSE_MODEL', `unknown model "${model}"; choose one of ${known.join(', ')}`);
  }

  const device = str(env, 'POSE_DEVICE', 'auto');
  if (!/^(auto|cpu|cuda(:\d+)?|mps)$/.test(device)) {
    throw new ConfigError('POSE_DEVICE', `"${device}" is not auto, cpu, cuda or cuda:N`);
  }

  const gpus = device === 'cpu' ? 0 : (choice?.cudaDeviceCount ?? 0);
  const workersSetting = str(env, 'POSE_WORKERS', 'auto');
  const workers = workersSetting === 'auto' ? autoWorkers(cores, gpus) : int(env, 'POSE_WORKERS', 0, { min: 1, max: 64 });

  const threadsSetting = str(env, 'POSE_THREADS', 'auto');
  const threads = threadsSetting === 'auto' ? Math.max(1, Math.floor(cores / workers)) : int(env, 'POSE_THREADS', 0, { min: 1, max: 256 });

  let python: string;
  let pythonSource: string;
  if (env.POSE_PYTHON) {
    python = env.POSE_PYTHON;
    pythonSource = 'POSE_PYTHON';
    if (!isExecutableFile(python)) {
      throw new ConfigError('POSE_PYTHON', `"${python}" does not exist or is not an executable file`);
    }
  } else if (choice?.python) {
    python = choice.python;
    pythonSource = 'set-up (pose-service/.python-choice.json)';
    if (!isExecutableFile(python)) {
      throw new ConfigError(
        'POSE_PYTHON',
        `the interpreter recorded by the set-up, "${python}", is gone; run \`npm run setup\` or set POSE_PYTHON`,
      );
    }
  } else {
    python = process.platform === 'win32' ? 'python' : 'python3';
    pythonSource = 'PATH (no set-up record: run `npm run setup`)';
  }

  const transport = str(env, 'POSE_TRANSPORT', 'rgb24-file') as FrameEncoding;
  if (!PROTOCOL.frameEncodings.includes(transport)) {
    throw new ConfigError('POSE_TRANSPORT', `"${transport}" is not one of ${PROTOCOL.frameEncodings.join(', ')}`);
  }
  if (env.REDIS_URL?.trim() && !env.POSE_STORAGE_DIR?.trim()) {
    throw new ConfigError('POSE_STORAGE_DIR', 'REDIS_URL is set: jobs need a folder every replica mounts for uploads and results');
  }

  const maxFramesLimit = int(env, 'MAX_FRAMES_LIMIT', 3000, { min: 1, max: 1_000_000 });
  const logLevel = str(env, 'LOG_LEVEL', 'info');
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) {
    throw new ConfigError('LOG_LEVEL', `"${logLevel}" is not a pino level (fatal, error, warn, info, debug, trace, silent)`);
  }

  const tempDir = path.resolve(str(env, 'POSE_TEMP_DIR', os.tmpdir()));
  const storageDir = env.POSE_STORAGE_DIR?.trim() ? path.resolve(env.POSE_STORAGE_DIR.trim()) : null;
  const webhookSecret = env.WEBHOOK_SECRET ? env.WEBHOOK_SECRET : null;
  if (webhookSecret !== null && Buffer.byteLength(webhookSecret) < WEBHOOK_SECRET_MIN_BYTES) {
    throw new ConfigError('WEBHOOK_SECRET', `must be at least ${WEBHOOK_SECRET_MIN_BYTES} bytes (e.g. \`openssl rand -hex 32\`)`);
  }
  let allowedHosts: AllowedHost[];
  try {
    allowedHosts = parseAllowedHosts(env.WEBHOOK_ALLOWED_HOSTS ?? '');
  } catch (err) {
    throw new ConfigError('WEBHOOK_ALLOWED_HOSTS', (err as Error).message);
  }

  const workerEnv: Record<string, string> = {};
  if (env.POSE_SYNTHETIC_FAULTS) workerEnv.POSE_SYNTHETIC_FAULTS = env.POSE_SYNTHETIC_FAULTS;
  if (env.POSE_MOVENET_DIR) workerEnv.POSE_MOVENET_DIR = env.POSE_MOVENET_DIR;

  return {
    port: int(env, 'PORT', 3001, { min: 0, max: 65535 }),
    host: str(env, 'HOST', '0.0.0.0'),
    workers,
    workersSetting,
    threads,
    model,
    device,
    batchSize: int(env, 'POSE_BATCH_SIZE', 8, { min: 1, max: 1024 }),
    python,
    pythonSource,
    modelsDir: path.resolve(REPO_ROOT, str(env, 'POSE_MODELS_DIR', path.join('pose-service', '.models'))),
    startupTimeoutMs: int(env, 'POSE_STARTUP_TIMEOUT_MS', 120_000, { min: 100 }),
    batchTimeoutMs: int(env, 'POSE_BATCH_TIMEOUT_MS', 60_000, { min: 100 }),
    maxUploadBytes: int(env, 'MAX_UPLOAD_MB', 500, { min: 1, max: 100_000 }) * 1024 * 1024,
    maxPixels: int(env, 'MAX_PIXELS', 4096 * 2160, { min: 1, max: 1_000_000_000 }),
    maxDecodedFrames: int(env, 'MAX_DECODED_FRAMES', 216_000, { min: 1 }),
    logLevel,
    minReady: int(env, 'POSE_MIN_READY', 1, { min: 1, max: 64 }),
    maxFramesLimit,
    defaultFps: 10,
    defaultMaxFrames: Math.min(300, maxFramesLimit),
    transport,
    maxActiveVideos: int(env, 'MAX_ACTIVE_VIDEOS', Math.max(2, workers), { min: 1, max: 1000 }),
    maxQueuedVideos: int(env, 'MAX_QUEUED_VIDEOS', 8, { min: 0, max: 10_000 }),
    requestTimeoutMs: int(env, 'REQUEST_TIMEOUT_MS', 600_000, { min: 1000 }),
    maxActiveUploads: int(env, 'MAX_ACTIVE_UPLOADS', 32, { min: 1, max: 10_000 }),
    upload: {
      timeoutMs: int(env, 'UPLOAD_TIMEOUT_MS', 900_000, { min: 1000 }),
      minBytesPerS: int(env, 'UPLOAD_MIN_BYTES_PER_S', 16_384, { min: 0 }),
      rateWindowMs: int(env, 'UPLOAD_RATE_WINDOW_MS', 10_000, { min: 100 }),
    },
    shutdownGraceMs: int(env, 'SHUTDOWN_GRACE_MS', 30_000, { min: 0 }),
    apiToken: env.API_TOKEN ? env.API_TOKEN : null,
    tempDir,
    backoffInitialMs: int(env, 'POSE_BACKOFF_INITIAL_MS', 1000, { min: 10 }),
    backoffMaxMs: int(env, 'POSE_BACKOFF_MAX_MS', 60_000, { min: 10 }),
    workerEnv,
    jobs: {
      maxJobs: int(env, 'JOBS_MAX', 100, { min: 1, max: 100_000 }),
      ttlMs: int(env, 'JOBS_TTL_S', 3600, { min: 1, max: 30 * 24 * 3600 }) * 1000,
      resultMaxBytes: int(env, 'JOB_RESULT_MAX_MB', 32, { min: 1, max: 4096 }) * 1024 * 1024,
      timeoutMs: int(env, 'JOB_TIMEOUT_MS', 3_600_000, { min: 1000 }),
      redisUrl: env.REDIS_URL?.trim() || null,
      storageDir,
      lockMs: int(env, 'JOBS_LOCK_MS', 60_000, { min: 1000 }),
      stalledIntervalMs: int(env, 'JOBS_STALLED_INTERVAL_MS', 30_000, { min: 500 }),
      maxStalls: int(env, 'JOBS_MAX_STALLS', 5, { min: 1, max: 1000 }),
      segmentFrames: int(env, 'JOBS_SEGMENT_FRAMES', 256, { min: 1, max: 1_000_000 }),
    },
    resumable: {
      dir: storageDir ? path.join(storageDir, 'uploads') : path.join(tempDir, RESUMABLE_TEMP_FOLDER),
      expiryMs: int(env, 'UPLOAD_EXPIRY_S', 24 * 3600, { min: 1, max: 30 * 24 * 3600 }) * 1000,
    },
    webhooks: {
      secret: webhookSecret,
      allowedHosts,
      allowPrivate: bool(env, 'WEBHOOK_ALLOW_PRIVATE', false),
      timeoutMs: int(env, 'WEBHOOK_TIMEOUT_MS', 10_000, { min: 100, max: 600_000 }),
      maxAttempts: int(env, 'WEBHOOK_MAX_ATTEMPTS', 6, { min: 1, max: 50 }),
      backoffInitialMs: int(env, 'WEBHOOK_BACKOFF_INITIAL_MS', 1000, { min: 10 }),
      backoffMaxMs: int(env, 'WEBHOOK_BACKOFF_MAX_MS', 60_000, { min: 10, max: 24 * 3600 * 1000 }),
    },
  };
}

/** The tus uploads' folder under POSE_TEMP_DIR (not `posepool-…`: that prefix names the per-request directories). */
export const RESUMABLE_TEMP_FOLDER = 'posepool.uploads';
/** A shorter key would make the signatures guessable. */
const WEBHOOK_SECRET_MIN_BYTES = 16;

/**
 * POSE_WORKERS=auto: 2 per GPU (the old pool's setting). On CPU one single-thread worker per core,
 * capped at one per GiB of memory (a MoveNet Thunder worker peaks near 0.6 GB). The benchmark on 2
 * cores: two 1-thread workers match one 2-thread worker on Thunder (6.98 vs 7.34 frames/s, within
 * the noise), beat it on Lightning (25.7 vs 22.5), and stay fast when other processes take CPU,
 * where a multi-threaded worker's OpenMP spin-waiting collapses (Lightning 37 → 4.7 frames/s).
 */
export function autoWorkers(cores: number, gpus: number, memoryBytes = os.totalmem()): number {
  if (gpus > 0) return 2 * gpus;
  return Math.max(1, Math.min(cores, Math.floor(memoryBytes / 2 ** 30)));
}

function str(env: NodeJS.ProcessEnv, name: string, fallback: string): string {
  const v = env[name];
  return v === undefined || v.trim() === '' ? fallback : v.trim();
}

function int(env: NodeJS.ProcessEnv, name: string, fallback: number, bounds: { min?: number; max?: number } = {}): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(name, `"${raw}" is not a whole number`);
  const n = Number(raw.trim());
  if (bounds.min !== undefined && n < bounds.min) throw new ConfigError(name, `must be at least ${bounds.min} (got ${n})`);
  if (bounds.max !== undefined && n > bounds.max) throw new ConfigError(name, `must be at most ${bounds.max} (got ${n})`);
  return n;
}

function bool(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return fallback;
  if (/^(true|1|yes|on)$/i.test(raw)) return true;
  if (/^(false|0|no|off)$/i.test(raw)) return false;
  throw new ConfigError(name, `"${raw}" is not true or false`);
}

function isExecutableFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}
