/**
 * `npm run bench [-- --quick] [-- --only ceiling,e2e,transport,baseline,scale,peer,torch,jobs,stream,blazepose] [-- --reps N]
 *  [-- --models movenet-thunder,movenet-lightning] [-- --source FILE] [-- --scale-model NAME] [-- --pythons A,B]`
 *
 * Measures, in one run on this machine and the same frames, the numbers of BENCHMARKS.md: the
 * in-process ceiling, posepool end to end through HTTP with 1 and 2 workers (31 frames, and in the
 * full run a 310-frame video of the same frames looped, where the fixed per-video latency weighs
 * a tenth as much), the old per-frame
 * design, the frame transports, memory at 30/300/3000 frames, TF.js-WASM, and the ceiling with every torch
 * the machine has (1.13 from Debian, 2.x from a pip venv), and BlazePose's ceiling (lite, full, heavy; any model
 * of --models works in the ceiling section too). Prints the table
 * (medians, with the range over repetitions) and writes it with the raw numbers to bench-results/.
 * Not a test: nothing here passes or fails on a timing; the targets are reported as met or missed.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, REPO_ROOT } from '../server/config.js';
import { type BaselineResult, runBaseline } from './bench/baseline.js';
import { type CeilingResult, runCeiling } from './bench/ceiling.js';
import { type Clip, jpegFrames, loopedClip, openSource } from './bench/clips.js';
import { type BenchContext, makeContext } from './bench/context.js';
import { type EndToEndResult, runEndToEnd } from './bench/end-to-end.js';
import { runJobsBench } from './bench/jobs.js';
import { hasPeer, loadTfjsWasm, type PeerResult, runPeer } from './bench/peer.js';
import { type BenchResults, renderReport } from './bench/report.js';
import { findTorchRuntimes, runRuntimes } from './bench/runtimes.js';
import { runScale, type ScaleResult } from './bench/scale.js';
import { startScriptNodeFlags } from './bench/server-process.js';
import { runStreamBench } from './bench/stream.js';
import { runTransport, TRANSPORTS, type TransportResult } from './bench/transport.js';
import { whyNoRedis } from './redis-process.js';

/** Frames of the long end-to-end video (full run only). */
const LONG_CLIP_FRAMES = 310;

const SECTIONS = ['ceiling', 'e2e', 'transport', 'baseline', 'scale', 'peer', 'torch', 'jobs', 'stream', 'blazepose'] as const;
/** The blazepose section's models (the ceiling, 1 process × 1 thread and × all cores) and clip. */
const BLAZEPOSE_MODELS = ['blazepose-lite', 'blazepose-full', 'blazepose-heavy'];
const BLAZEPOSE_CLIP = path.join('server', 'test', 'fixtures', 'messi-pan.mp4');
type Section = (typeof SECTIONS)[number];

interface Options {
  quick: boolean;
  reps?: number;
  only: Set<Section>;
  models: string[];
  source?: string;
  scaleModel?: string;
  batchSize: number;
  /** More interpreters for the torch section (beyond those found). */
  pythons: string[];
  /** NODE_OPTIONS for every server process the bench starts (to try a V8 setting). */
  serverNodeOptions?: string;
}

function parseArgs(argv: string[]): Options {
  const opts: Options = {
    quick: false,
    only: new Set(SECTIONS),
    models: ['movenet-thunder', 'movenet-lightning'],
    batchSize: 8,
    pythons: [],
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split('=', 2);
    const value = () => inline ?? argv[++i];
    switch (flag) {
      case '--quick':
        opts.quick = true;
        break;
      case '--reps':
        opts.reps = Number(value());
        if (!(opts.reps >= 1)) usage('--reps needs a whole number >= 1');
        break;
      case '--only': {
        const names = value().split(',').filter(Boolean);
        for (const n of names) if (!SECTIONS.includes(n as Section)) usage(`unknown section "${n}" (${SECTIONS.join(', ')})`);
        opts.only = new Set(names as Section[]);
        break;
      }
      case '--models':
        opts.models = value().split(',').filter(Boolean);
        break;
      case '--source':
        opts.source = path.resolve(value());
        break;
      case '--scale-model':
        opts.scaleModel = value();
        break;
      case '--pythons':
        opts.pythons = value().split(',').filter(Boolean);
        break;
      case '--server-node-options':
        opts.serverNodeOptions = value();
        break;
      case '--batch-size':
        opts.batchSize = Number(value());
        break;
      case '--help':
      case '-h':
        usage();
        break;
      default:
        usage(`unknown option ${argv[i]}`);
    }
  }
  return opts;
}

function usage(error?: string): never {
  const text = `usage: npm run bench -- [--quick] [--reps N] [--only ${SECTIONS.join(',')}] [--models a,b] [--source clip] [--scale-model name] [--batch-size N] [--pythons a,b] [--server-node-options "--flag ..."]`;
  (error ? console.error : console.log)(error ? `bench: ${error}\n${text}` : text);
  process.exit(error ? 2 : 0);
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const ctx = makeContext({
    quick: opts.quick,
    reps: opts.reps,
    serverEnv: opts.serverNodeOptions ? { NODE_OPTIONS: opts.serverNodeOptions } : {},
  });
  const cores = ctx.cores;
  const workerCounts = cores >= 2 ? [1, 2] : [1];
  const threadsFor = (workers: number) => Math.max(1, Math.floor(cores / workers));
  const defaultModel = opts.models[0];
  // The server's own defaults (POSE_TRANSPORT, POSE_WORKERS=auto) on this machine, whatever this shell sets
  // (POSE_PYTHON only has to name an existing file here: nothing is started with it).
  const defaults = loadConfig({ POSE_PYTHON: process.execPath }, { cores });
  const defaultTransport = defaults.transport;
  const started = new Date();
  const loads: { section: string; load1: number }[] = [{ section: 'start', load1: os.loadavg()[0] }];
  const mark = (section: string) => loads.push({ section, load1: os.loadavg()[0] });
  ctx.log(`${opts.quick ? 'quick' : 'full'} run: ${ctx.reps} repetitions, ${cores} cores, python ${ctx.python}`);

  const source = await openSource(ctx, opts.source);
  const clip31 = await loopedClip(ctx, source, 31);
  const frames31 = await jpegFrames(ctx, clip31);

  const results: BenchResults = {
    startedAt: started.toISOString(),
    quick: opts.quick,
    reps: ctx.reps,
    machine: machineInfo(ctx),
    source: {
      file: path.relative(ctx.repo, source.file),
      width: source.video.width,
      height: source.video.height,
      codec: source.video.codec,
    },
    frames: frames31.count,
    batchSize: opts.batchSize,
    defaults: { transport: defaultTransport, workers: defaults.workers, threads: defaults.threads },
    serverNodeOptions: opts.serverNodeOptions,
    serverNodeFlags: startScriptNodeFlags(ctx.repo),
    models: opts.models,
    loads,
    ceiling: [],
    endToEnd: [],
    endToEndLong: [],
    transportEndToEnd: [],
    transport: null,
    baseline: null,
    scale: null,
    peer: [],
    runtimes: [],
    skipped: [],
  };

  const section = async (name: Section, fn: () => Promise<void>) => {
    if (!opts.only.has(name)) return;
    const t0 = Date.now();
    try {
      await fn();
    } catch (err) {
      ctx.log(`${name} FAILED: ${(err as Error).stack ?? err}`);
      results.skipped.push({ section: name, reason: `failed: ${(err as Error).message.split('\n')[0]}` });
    }
    mark(name);
    ctx.log(`${name} done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  };

  await section('ceiling', async () => {
    // --quick: the first 16 frames, and no "together" run.
    const limit = opts.quick ? Math.min(16, frames31.count) : 0;
    for (const model of opts.models) {
      for (const workers of workerCounts) {
        const threads = threadsFor(workers);
        ctx.log(`ceiling: ${model}, 1 process × ${threads} thread(s)`);
        results.ceiling.push(await runCeiling(ctx, model, frames31, { threads, processes: 1, batch: opts.batchSize, limit }));
        if (workers > 1 && !opts.quick) {
          ctx.log(`ceiling: ${model}, ${workers} processes × ${threads} thread(s) together`);
          results.ceiling.push(await runCeiling(ctx, model, frames31, { threads, processes: workers, batch: opts.batchSize }));
        }
      }
    }
  });

  await section('e2e', async () => {
    const models = opts.quick ? [defaultModel] : opts.models;
    for (const model of models) {
      for (const workers of workerCounts) {
        const config = { model, workers, threads: threadsFor(workers), transport: defaultTransport, batchSize: opts.batchSize };
        ctx.log(`end to end: ${model}, POSE_WORKERS=${workers} POSE_THREADS=${config.threads}, ${defaultTransport}`);
        results.endToEnd.push(await runEndToEnd(ctx, config, clip31));
      }
    }
    if (!opts.quick) {
      // A longer video (the same frames looped, so the same work per frame; the ceiling is the 31-frame one):
      // upload receive, ffprobe and ffmpeg's start-up are a fixed cost per video, a large share of 31 frames.
      const clip310 = await loopedClip(ctx, source, LONG_CLIP_FRAMES);
      for (const model of models) {
        for (const workers of workerCounts) {
          const config = { model, workers, threads: threadsFor(workers), transport: defaultTransport, batchSize: opts.batchSize };
          ctx.log(
            `end to end, ${clip310.frames} frames: ${model}, POSE_WORKERS=${workers} POSE_THREADS=${config.threads}, ${defaultTransport}`,
          );
          results.endToEndLong.push(await runEndToEnd(ctx, config, clip310, ctx.reps, clip31));
        }
      }
      // The ceilings again, now: the host's speed drifts (BENCHMARKS.md), and the ratios above use the mean of before and after.
      const after: CeilingResult[] = [];
      for (const c of results.ceiling.filter((c) => models.includes(c.model))) {
        ctx.log(`ceiling again, after end to end: ${c.model}, ${c.processes} process(es) × ${c.threads} thread(s)`);
        after.push(await runCeiling(ctx, c.model, frames31, { threads: c.threads, processes: c.processes, batch: opts.batchSize }));
      }
      if (after.length) results.ceilingAfter = after;
    }
  });

  await section('transport', async () => {
    ctx.log('transport: ffmpeg output, round trips through a synthetic worker, worker-side decode');
    results.transport = await runTransport(ctx, clip31, frames31, opts.batchSize);
    if (!opts.quick) {
      // The same end-to-end measurement with each other transport, for the default model and the faster worker count.
      const best = bestEndToEnd(results.endToEnd, defaultModel);
      const workers = best?.config.workers ?? workerCounts[workerCounts.length - 1];
      for (const transport of TRANSPORTS.filter((t) => t !== defaultTransport)) {
        const config = { model: defaultModel, workers, threads: threadsFor(workers), transport, batchSize: opts.batchSize };
        ctx.log(`end to end: ${defaultModel}, POSE_WORKERS=${workers}, transport ${transport}`);
        results.transportEndToEnd.push(await runEndToEnd(ctx, config, clip31));
      }
    }
  });

  await section('baseline', async () => {
    const frames = opts.quick ? 8 : frames31.count;
    ctx.log(`baseline: one process per frame, ${frames} frames, 2 at once (${defaultModel})`);
    results.baseline = await runBaseline(ctx, defaultModel, clip31, frames, 2);
  });

  await section('scale', async () => {
    // The test double by default: the server's memory is the question, and its work per frame is the same
    // (same frames, same payloads, one 17-keypoint person per frame); --scale-model picks a real model.
    const model = opts.scaleModel ?? 'synthetic';
    const clips: Clip[] = [];
    for (const n of opts.quick ? [30, 1000] : [30, 300, 3000]) clips.push(await loopedClip(ctx, source, n));
    results.scale = await runScale(ctx, clips, { model, workers: 'auto', transport: defaultTransport, batchSize: opts.batchSize });
  });

  await section('peer', async () => {
    const lib = await loadTfjsWasm(ctx);
    if ('missing' in lib) {
      results.skipped.push({ section: 'peer', reason: lib.missing });
      return;
    }
    for (const model of opts.models) {
      if (!hasPeer(model)) {
        results.skipped.push({
          section: 'peer',
          reason: `${model}: the peer runs MoveNet only (BlazePose in TF.js: pose-service/parity/blazepose_tfjs.mjs speed)`,
        });
        continue;
      }
      ctx.log(`peer: TF.js-WASM ${model}`);
      results.peer.push(await runPeer(ctx, lib, model, frames31));
    }
  });

  await section('torch', async () => {
    const runtimes = findTorchRuntimes(ctx, opts.pythons);
    const limit = opts.quick ? Math.min(16, frames31.count) : 0;
    results.runtimes = await runRuntimes(ctx, runtimes, opts.quick ? [defaultModel] : opts.models, frames31, {
      batch: opts.batchSize,
      limit,
    });
  });

  await section('stream', async () => {
    const long = await loopedClip(ctx, source, LONG_CLIP_FRAMES);
    ctx.log(`stream: ${defaultModel}, ${long.frames} frames, JSON vs NDJSON (time to the first frame and to the last line)`);
    results.stream = await runStreamBench(ctx, defaultModel, long);
  });

  await section('blazepose', async () => {
    // The ceiling for BlazePose, on a clip of the kind it is made for (one person filling a good part of the
    // frame: messi-pan.mp4, 31 frames looped as above), since the default clip's distant pedestrians are mostly
    // too small for its detector.
    const rider = await openSource(ctx, path.join(REPO_ROOT, BLAZEPOSE_CLIP));
    const riderFrames = await jpegFrames(ctx, await loopedClip(ctx, rider, 31));
    const limit = opts.quick ? Math.min(16, riderFrames.count) : 0;
    const models = opts.quick ? BLAZEPOSE_MODELS.slice(0, 1) : BLAZEPOSE_MODELS;
    const rows: CeilingResult[] = [];
    results.blazepose = { clip: BLAZEPOSE_CLIP, width: riderFrames.width, height: riderFrames.height, rows };
    for (const model of models) {
      for (const threads of [...new Set([1, cores])]) {
        ctx.log(`blazepose: ${model}, 1 process × ${threads} thread(s)`);
        rows.push(await runCeiling(ctx, model, riderFrames, { threads, processes: 1, batch: opts.batchSize, limit }));
      }
    }
  });

  await section('jobs', async () => {
    const why = whyNoRedis();
    if (why) {
      results.skipped.push({ section: 'jobs', reason: why });
      return;
    }
    results.jobs = await runJobsBench(ctx, path.join(REPO_ROOT, 'server', 'test', 'fixtures', 'messi-pan.mp4'));
  });

  const report = renderReport(results);
  mkdirSync(ctx.resultsDir, { recursive: true });
  const stamp = started.toISOString().replace(/[:.]/g, '-');
  const jsonFile = path.join(ctx.resultsDir, `bench-${stamp}.json`);
  const mdFile = path.join(ctx.resultsDir, `bench-${stamp}.md`);
  writeFileSync(jsonFile, JSON.stringify(results, null, 2));
  writeFileSync(mdFile, report);
  writeFileSync(path.join(ctx.resultsDir, 'latest.md'), report);
  console.log(report);
  console.log(`raw results: ${path.relative(process.cwd(), jsonFile)}; table: ${path.relative(process.cwd(), mdFile)}`);
}

function bestEndToEnd(rows: EndToEndResult[], model: string): EndToEndResult | null {
  return rows.filter((r) => r.config.model === model).sort((a, b) => b.fps.median - a.fps.median)[0] ?? null;
}

function machineInfo(ctx: BenchContext) {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: ctx.cores,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    python: ctx.python,
  };
}

// Types re-exported for the report module's consumers.
export type { BaselineResult, CeilingResult, EndToEndResult, PeerResult, ScaleResult, TransportResult };

main().catch((err) => {
  console.error(`bench: ${(err as Error).stack ?? err}`);
  process.exit(1);
});
