/** The benchmark's table (Markdown, as printed and as pasted into BENCHMARKS.md), from the raw results. */
import type { BaselineResult } from './baseline.js';
import type { CeilingMode, CeilingResult } from './ceiling.js';
import type { EndToEndResult } from './end-to-end.js';
import type { JobsBenchResult } from './jobs.js';
import type { PeerResult } from './peer.js';
import type { RuntimeRow } from './runtimes.js';
import type { ScaleResult } from './scale.js';
import { fmtSpread, mib, num, type Spread, spread } from './stats.js';
import type { StreamBenchResult } from './stream.js';
import { pixelsOf, type TransportResult } from './transport.js';

export interface BenchResults {
  startedAt: string;
  quick: boolean;
  reps: number;
  machine: { cpu: string; cores: number; memoryGiB: number; platform: string; node: string; python: string };
  source: { file: string; width: number; height: number; codec: string };
  frames: number;
  batchSize: number;
  /** The server's defaults on this machine: POSE_TRANSPORT, and what POSE_WORKERS/POSE_THREADS=auto resolve to. */
  defaults: { transport: string; workers: number; threads: number };
  /** NODE_OPTIONS given to the server processes, if any. */
  serverNodeOptions?: string;
  /** Node flags of `npm start` (package.json), which the bench's server processes get too. */
  serverNodeFlags: string[];
  models: string[];
  loads: { section: string; load1: number }[];
  ceiling: CeilingResult[];
  /** The same ceilings measured again right after the end-to-end section (full run): the host's drift between the two. */
  ceilingAfter?: CeilingResult[];
  /** End to end on the 31-frame clip. */
  endToEnd: EndToEndResult[];
  /**
   * End to end on a longer video (310 frames: the same frames looped), full run only, default model:
   * the steady state, where the fixed cost per video (receive, probe, ffmpeg's start-up) weighs little.
   */
  endToEndLong: EndToEndResult[];
  transportEndToEnd: EndToEndResult[];
  transport: TransportResult | null;
  baseline: BaselineResult | null;
  scale: ScaleResult | null;
  peer: PeerResult[];
  /** The ceiling (1 × 1 thread) with each torch found (the torch section). */
  runtimes?: RuntimeRow[];
  /** The durable jobs engine against the in-memory one (the jobs section). */
  jobs?: JobsBenchResult;
  /** How soon a client sees poses: JSON vs NDJSON (the stream section). */
  stream?: StreamBenchResult;
  /** BlazePose's ceiling (the blazepose section): lite, full, heavy, 1 process × 1 thread and × all cores, on its own clip. */
  blazepose?: { clip: string; width: number; height: number; rows: CeilingResult[] };
  skipped: { section: string; reason: string }[];
}

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

const ms = (x: number) => (Number.isFinite(x) ? `${num(x)} ms` : 'n/a');
const met = (ok: boolean | null) => (ok === null ? 'not measured' : ok ? '**met**' : '**missed**');

/** The ceiling of `model` with `processes` × `threads` in `list` (alone: processes = 1, or together). */
function findCeiling(list: CeilingResult[] | undefined, model: string, threads: number, processes: number): CeilingResult | undefined {
  return list?.find((c) => c.model === model && c.threads === threads && c.processes === processes);
}

/** The ceiling measured before the end-to-end section. */
function ceilingOf(r: BenchResults, model: string, threads: number, processes: number): CeilingResult | undefined {
  return findCeiling(r.ceiling, model, threads, processes);
}

/**
 * The ceiling an end-to-end row is judged against: the mean of the ceiling measured before the
 * end-to-end section and again after it where both exist, so that the host speeding up or slowing
 * down between sections does not land in the ratio.
 */
export function ceilingFor(
  r: BenchResults,
  model: string,
  threads: number,
  processes: number,
  mode: CeilingMode = 'tracking',
): { fps: number; cpuMsPerFrame: number } | undefined {
  const before = ceilingOf(r, model, threads, processes);
  if (!before) return undefined;
  const after = findCeiling(r.ceilingAfter, model, threads, processes);
  const runs = after ? [before, after] : [before];
  const mean = (f: (c: CeilingResult) => number) => runs.reduce((sum, c) => sum + f(c), 0) / runs.length;
  return { fps: mean((c) => c.fps[mode].median), cpuMsPerFrame: mean((c) => c.cpuMsPerFrame[mode]) };
}

/** All CPU per frame of an end-to-end run: ffmpeg/ffprobe, the server, the workers. */
function cpuSum(e: EndToEndResult): number {
  return e.cpuMsPerFrame.mediaTools + e.cpuMsPerFrame.server + e.cpuMsPerFrame.workers;
}

const E2E_HEADER = [
  'model',
  'POSE_WORKERS × threads',
  'frames/s',
  'wall',
  'N × ceiling (alone)',
  'e2e ÷ N × ceiling',
  'N together (ceiling)',
  'e2e ÷ together',
  'cores obtained',
  'CPU/frame: ceiling ÷ e2e',
];

/** One row of an end-to-end table (E2E_HEADER), against the ceiling measured on the 31-frame clip (ceilingFor). */
function e2eRow(r: BenchResults, e: EndToEndResult): string[] {
  const alone = ceilingFor(r, e.config.model, e.config.threads, 1);
  const together = e.config.workers > 1 ? ceilingFor(r, e.config.model, e.config.threads, e.config.workers) : alone;
  const nAlone = alone ? alone.fps * e.config.workers : NaN;
  const tog = together ? together.fps : NaN;
  return [
    e.config.model,
    `${e.config.workers} × ${e.config.threads}`,
    fmtSpread(e.fps),
    `${fmtSpread(e.wallMs, 0)} ms`,
    num(nAlone),
    Number.isFinite(nAlone) ? num(e.fps.median / nAlone) : 'n/a',
    num(tog),
    Number.isFinite(tog) ? num(e.fps.median / tog) : 'n/a',
    `${num(e.coresUsed)} of ${r.machine.cores}`,
    alone ? num(alone.cpuMsPerFrame / cpuSum(e)) : 'n/a',
  ];
}

export function renderReport(r: BenchResults): string {
  const out: string[] = [];
  const loads = r.loads.map((l) => `${l.section} ${l.load1.toFixed(1)}`).join(', ');
  out.push(`## posepool benchmark (${r.quick ? 'quick' : 'full'} run, ${r.startedAt})`);
  out.push('');
  out.push(
    `Machine: ${r.machine.cpu}, ${r.machine.cores} cores, ${r.machine.memoryGiB} GiB, ${r.machine.platform}; Node ${r.machine.node}; Python ${r.machine.python}. ` +
      `Load average (1 min) at start and after each section: ${loads}. ` +
      `Frames: ${r.frames} frames of ${r.source.file} (${r.source.width}x${r.source.height} ${r.source.codec}, looped, sampled at 10 fps), ` +
      `batches of ${r.batchSize}. Server defaults here: POSE_TRANSPORT=${r.defaults.transport}, POSE_WORKERS=auto → ${r.defaults.workers} × ${r.defaults.threads} thread(s). ` +
      `Each cell: median of ${r.reps} repetitions (min–max).` +
      ` Server: \`node ${[...r.serverNodeFlags, 'dist/server/main.js'].join(' ')}\` (as \`npm start\`)` +
      (r.serverNodeOptions ? ` with NODE_OPTIONS="${r.serverNodeOptions}".` : '.'),
  );
  out.push('');

  // 1. Ceiling
  if (r.ceiling.length) {
    out.push('### Ceiling: the model in a loop in one Python process (frames decoded, no IPC)');
    out.push('');
    out.push(
      table(
        [
          'model',
          'processes × threads',
          'frames/s as served (tracking)',
          'again after end to end',
          'frames/s one pass',
          'inferences/frame (tracking)',
          'CPU/frame as served',
          'cores obtained',
          'JPEG decode/frame',
        ],
        r.ceiling.map((c) => [
          c.model + (c.frames !== r.frames ? ` (first ${c.frames} frames)` : ''),
          `${c.processes} × ${c.threads}${c.processes > 1 ? ' (together, summed)' : ''}`,
          fmtSpread(c.fps.tracking),
          ((a) => (a ? `${fmtSpread(a.fps.tracking)}, ${ms(a.cpuMsPerFrame.tracking)}` : '—'))(
            findCeiling(r.ceilingAfter, c.model, c.threads, c.processes),
          ),
          fmtSpread(c.fps.single),
          num(c.inferencesPerFrame.tracking),
          ms(c.cpuMsPerFrame.tracking),
          `${num(c.coresUsed.tracking)} of ${c.processes * c.threads}`,
          ms(c.decodeMsPerFrame),
        ]),
      ),
    );
    out.push('');
    out.push(
      '"As served" is what a worker runs for a video (MoveNet on CPU: each frame on the crop from the frame before, a batch\'s first frame detected afresh); "one pass" has tracking off. ' +
        'N × ceiling for N workers uses the threads each worker gets (POSE_THREADS=auto = cores ÷ N). ' +
        '"Again after end to end" (full run): the same measurement repeated right after the end-to-end section (frames/s, CPU/frame); the end-to-end ratios use the mean of the two, so the host\'s drift between sections does not land in them. ' +
        '"Cores obtained" = CPU time ÷ wall time: below processes × threads, other work on the machine took the rest (or threads waited on each other).',
    );
    out.push('');
  }

  // 2. End to end
  if (r.endToEnd.length) {
    out.push(`### posepool end to end: HTTP upload → response, ${r.frames} frames`);
    out.push('');
    out.push(
      table(
        E2E_HEADER,
        r.endToEnd.map((e) => e2eRow(r, e)),
      ),
    );
    out.push('');
    out.push(
      '"CPU/frame: ceiling ÷ e2e" is the load-independent form of the efficiency: the ceiling\'s CPU per frame (one process alone, same threads) ' +
        'over all the CPU the end-to-end run spends per frame (workers, server, ffmpeg). Where the cores are saturated, e2e ÷ N × ceiling tends to it.',
    );
    out.push('');
    out.push('Split of the wall time (medians, ms for the whole video; Σ = summed over batches, which overlap when N > 1):');
    out.push('');
    out.push(
      table(
        [
          'model',
          'N × T',
          'wall',
          'receive + probe',
          'pipeline',
          'decode wait',
          'Σ inference',
          'Σ worker decode',
          'Σ transport',
          'response',
          'response size',
        ],
        [...r.endToEnd, ...r.transportEndToEnd].map((e) => {
          const m = (k: keyof EndToEndResult['reps'][number]) => spread(e.reps.map((x) => x[k] as number)).median;
          return [
            e.config.model + (e.config.transport !== r.defaults.transport ? ` (${e.config.transport})` : ''),
            `${e.config.workers} × ${e.config.threads}`,
            num(m('wallMs'), 0),
            num(m('receiveProbeMs'), 0),
            num(m('pipelineMs'), 0),
            num(m('decodeWaitMs'), 0),
            num(m('inferenceMs'), 0),
            num(m('workerDecodeMs'), 0),
            num(m('transportMs'), 0),
            num(m('responseMs'), 0),
            `${(m('bodyBytes') / 1024).toFixed(0)} KiB`,
          ];
        }),
      ),
    );
    out.push('');
    out.push(
      'CPU per frame during the timed uploads (Linux /proc: user + system), against the CPU the cores offer per frame at that speed:',
    );
    out.push('');
    out.push(
      table(
        [
          'model',
          'N × T',
          'ffmpeg + ffprobe',
          'server (Node)',
          'workers',
          'sum',
          'cores × wall per frame',
          'peak RSS: server / each worker',
        ],
        [...r.endToEnd, ...r.transportEndToEnd].map((e) => {
          const c = e.cpuMsPerFrame;
          return [
            e.config.model + (e.config.transport !== r.defaults.transport ? ` (${e.config.transport})` : ''),
            `${e.config.workers} × ${e.config.threads}`,
            ms(c.mediaTools),
            ms(c.server),
            ms(c.workers),
            ms(c.mediaTools + c.server + c.workers),
            ms((r.machine.cores * 1000) / e.fps.median),
            `${mib(e.serverPeakKb)} / ${e.workerPeakKb.map(mib).join(', ')}`,
          ];
        }),
      ),
    );
    out.push('');
  }

  // 2b. End to end on a longer video
  if (r.endToEndLong.length) {
    const frames = r.endToEndLong[0].clipFrames;
    out.push(`### posepool end to end, a longer video (${frames} frames): steady state`);
    out.push('');
    out.push(
      table(
        [...E2E_HEADER, 'CPU/frame: ffmpeg + ffprobe', 'server (Node)', 'workers'],
        r.endToEndLong.map((e) => [
          ...e2eRow(r, e),
          ms(e.cpuMsPerFrame.mediaTools),
          ms(e.cpuMsPerFrame.server),
          ms(e.cpuMsPerFrame.workers),
        ]),
      ),
    );
    out.push('');
    out.push(
      `The ${r.frames} frames of the clip above looped to ${frames} (same frames, so the same work per frame; the ceiling is the one measured on the ${r.frames} frames), ` +
        `warmed up with one untimed ${r.frames}-frame upload. The fixed cost per video (receiving the upload, ffprobe, ffmpeg's start-up before its first batch) ` +
        `is paid once per ${frames} frames instead of once per ${r.frames}: what remains is the steady-state cost per frame.`,
    );
    out.push('');
  }

  // 3. Baseline
  const best = [...r.endToEnd].filter((e) => e.config.model === r.baseline?.model).sort((a, b) => b.fps.median - a.fps.median)[0];
  if (r.baseline) {
    const b = r.baseline;
    const extrapolated = b.frames !== r.frames;
    const wall31 = extrapolated ? (b.wallMs * r.frames) / b.frames : b.wallMs;
    out.push(`### The old design: one Python process per frame (at most ${b.concurrency} at once) vs the warm pool`);
    out.push('');
    const rows = [
      [
        `per-frame processes (${b.model})`,
        `${num(wall31 / 1000)} s${extrapolated ? ` (measured on ${b.frames} frames, scaled to ${r.frames})` : ''}`,
        `ffmpeg ${ms(b.extractMs)}; per process: ${ms(b.processMs)} (imports ${ms(b.importMs)}, model load ${ms(b.loadMs)}, pose ${ms(b.poseMs)})${b.failed ? `; ${b.failed} failed` : ''}`,
      ],
    ];
    if (best) {
      rows.push([
        `warm pool, POSE_WORKERS=${best.config.workers} (HTTP end to end)`,
        `${num(best.wallMs.median / 1000)} s`,
        `**${num(wall31 / best.wallMs.median, 1)}× faster**`,
      ]);
    }
    out.push(table([`${r.frames} frames`, 'wall time', 'notes'], rows));
    out.push('');
  }

  // 4. Transport
  if (r.transport) {
    const t = r.transport;
    out.push(`### Transport: cost per frame of getting a ${t.width}x${t.height} frame to a worker and its result back`);
    out.push('');
    const ff = (pixels: string) => t.ffmpeg.find((f) => f.pixels === pixels);
    const e2e = (transport: string) =>
      [...r.endToEnd, ...r.transportEndToEnd].find(
        (e) =>
          e.config.transport === transport &&
          e.config.model === r.models[0] &&
          e.config.workers === (r.transportEndToEnd[0]?.config.workers ?? e.config.workers),
      );
    out.push(
      table(
        [
          'POSE_TRANSPORT',
          'ffmpeg output (CPU/frame)',
          'server prep',
          'round trip − inference',
          'of which worker decode',
          'total added',
          'message/frame',
          'e2e frames/s',
        ],
        t.roundTrip.map((rt) => {
          const f = ff(pixelsOf(rt.transport));
          const e = e2e(rt.transport);
          return [
            rt.transport,
            f ? ms(f.cpuMsPerFrame.median) : 'n/a',
            ms(rt.prepMs.median),
            ms(rt.overheadMs.median),
            ms(rt.workerDecodeMs.median),
            `**${ms(f ? f.cpuMsPerFrame.median + rt.totalMs.median : rt.totalMs.median)}**`,
            `${(rt.messageBytesPerFrame / 1024).toFixed(0)} KiB`,
            e ? `${fmtSpread(e.fps)} (N=${e.config.workers})` : 'not run',
          ];
        }),
      ),
    );
    out.push('');
    out.push(
      'jpeg: ffmpeg encodes JPEG, base64 in the message, the worker decodes it. rgb24: ffmpeg outputs raw RGB, base64 in the message (width × height × 3 bytes per frame, × 4/3, through Node and the pipe). ' +
        "file: the JPEG is written to the request's private temp folder, the message carries its path, the worker reads and decodes it. " +
        "rgb24-file: ffmpeg outputs raw RGB (no JPEG encode), the server writes each frame's width × height × 3 bytes to the private temp folder, " +
        'the message carries path, width and height, the worker reads it with np.fromfile (no decode). ' +
        'Server prep = payloads made (base64 or file write) + files deleted; total added = ffmpeg output + server prep + round trip − inference. ' +
        'The round trip uses a synthetic worker (its inference is measured and subtracted); the temp folder is a normal one (os.tmpdir()), not /dev/shm.',
    );
    out.push('');
    out.push(
      "Worker side alone, in one process (message parse + payload → RGB array with the worker's decode_frame, per frame; files in a normal temp folder):",
    );
    out.push('');
    out.push(
      table(
        ['payload', 'message/frame', 'parse', 'decode', 'sum'],
        t.workerSide.map((w) => [
          w.kind,
          `${(w.messageBytesPerFrame / 1024).toFixed(1)} KiB`,
          ms(w.parseMs.median),
          ms(w.decodeMs.median),
          ms(w.parseMs.median + w.decodeMs.median),
        ]),
      ),
    );
    for (const f of t.firstBatch) {
      out.push(
        `\nffmpeg start-up (${f.pixels}): first frame after ${ms(f.firstFrameMs.median)}, first batch of ${r.batchSize} after ${ms(f.firstBatchMs.median)} ` +
          '(no worker has work before then: a fixed wait per video).',
      );
    }
    out.push('');
  }

  // 5. Scale
  if (r.scale) {
    const s = r.scale;
    out.push(
      `### Scale: one upload of 30 / 300 / 3000 frames, fresh server each (${s.model}${s.model === 'synthetic' ? ', the TEST DOUBLE: no model cost' : ''}, POSE_WORKERS=${s.workers}, ${s.transport})`,
    );
    out.push('');
    out.push(
      table(
        ['frames', 'wall', 'frames/s', 'server peak RSS', 'server RSS when ready', 'workers peak RSS', 'response', 'server CPU/frame'],
        s.rows.map((x) => [
          String(x.frames),
          `${num(x.wallMs / 1000)} s`,
          num(x.fps),
          mib(x.serverPeakKb),
          mib(x.serverIdleKb),
          x.workerPeakKb.map(mib).join(', '),
          `${(x.responseBytes / 2 ** 20).toFixed(1)} MiB`,
          ms(x.serverCpuMsPerFrame),
        ]),
      ),
    );
    out.push('');
  }

  // 6. Peer
  if (r.peer.length) {
    out.push('### Peer: the same MoveNet in Node with TF.js-WASM (one inference per frame)');
    out.push('');
    out.push(
      table(
        ['model', 'TF.js-WASM frames/s', 'Python, 1 thread, one pass', 'ratio', 'Python, 1 worker × all cores, one pass', 'ratio'],
        r.peer.map((p) => {
          const python = (threads: number) => {
            const before = ceilingOf(r, p.model, threads, 1);
            const used = ceilingFor(r, p.model, threads, 1, 'single');
            if (!before || !used) return ['n/a', 'n/a'];
            const again = r.ceilingAfter?.length ? ` (mean with the run after end to end: ${num(used.fps)})` : '';
            return [fmtSpread(before.fps.single) + again, `${num(used.fps / p.fps.median, 1)}×`];
          };
          return [
            p.model,
            `${fmtSpread(p.fps)} (${p.threads} thread${p.threads > 1 ? 's' : ''}${p.simd ? ', SIMD' : ''})`,
            ...python(1),
            ...python(r.machine.cores),
          ];
        }),
      ),
    );
    out.push('');
  }

  const stream = r.stream;
  if (stream) {
    out.push(`### Streamed results: ${stream.model}, ${stream.frames} frames, one upload at a time (median of the repetitions)`);
    out.push('');
    out.push(
      table(
        ['measure', 'value'],
        [
          ['POST → the whole JSON body', `${fmtSpread(stream.jsonMs, 0)} ms`],
          ['POST (Accept: application/x-ndjson) → the first frame', `${fmtSpread(stream.firstFrameMs, 0)} ms`],
          ['the same → the last line', `${fmtSpread(stream.streamMs, 0)} ms`],
          ['first frame vs whole body', `${num((100 * stream.firstFrameMs.median) / stream.jsonMs.median, 0)}%`],
        ],
      ),
    );
    out.push('');
  }

  const jobs = r.jobs;
  if (jobs) {
    const o = jobs.overhead;
    const p = jobs.replicas;
    out.push(`### Jobs: BullMQ on Redis against the in-memory engine (synthetic double at ${jobs.frameMs} ms per frame, a sleep)`);
    out.push('');
    out.push(
      table(
        ['measure', 'value'],
        [
          [`one ${o.frames}-frame job at a time, POST → succeeded (median of ${o.jobs}), memory`, ms(o.memoryMs)],
          [`the same, redis (REDIS_URL, POSE_STORAGE_DIR)`, ms(o.redisMs)],
          ["the queue's own overhead per job", ms(o.redisMs - o.memoryMs)],
          [`${p.jobs} jobs of ${p.frames} frames at once (${p.frameMs} ms per frame), 1 replica (1 worker)`, ms(p.oneMs)],
          [`the same, 2 replicas (1 worker each)`, ms(p.twoMs)],
          ['2 replicas vs 1', `${num(p.oneMs / p.twoMs)}×`],
          [
            `a ${jobs.resume.frames}-frame job, its replica SIGKILLed after ${num(jobs.resume.checkpointedBatches, 0)} batches: kill → succeeded on the other (JOBS_LOCK_MS=${jobs.resume.lockMs}, JOBS_STALLED_INTERVAL_MS=${jobs.resume.stalledIntervalMs})`,
            ms(jobs.resume.killToDoneMs),
          ],
        ],
      ),
    );
    out.push('');
    const f = jobs.fanOut;
    out.push(
      `One ${f.frames}-frame job (${f.frameMs} ms per frame, batches of 4), fanned out in ${f.segments} segments of ${f.segmentFrames} (JOBS_SEGMENT_FRAMES):`,
    );
    out.push('');
    out.push(
      table(
        ['measure', 'value'],
        [
          ['1 replica, one segment (POST → succeeded)', ms(f.wholeMs)],
          [`1 replica, ${f.segments} segments`, ms(f.splitOneMs)],
          [`the queue's own overhead per extra segment`, ms((f.splitOneMs - f.wholeMs) / Math.max(1, f.segments - 1))],
          [`2 replicas, ${f.segments} segments`, ms(f.splitTwoMs)],
          ['2 replicas vs 1 (one segment)', `${num(f.wholeMs / f.splitTwoMs)}×`],
        ],
      ),
    );
    out.push('');
  }

  // Targets
  const runtimes = r.runtimes;
  if (runtimes?.length) {
    out.push('### torch runtimes: the ceiling, 1 process × 1 thread, with each torch on this machine');
    out.push('');
    const base = (model: string) => runtimes.find((x) => x.runtime.workers && x.ceiling.model === model)?.ceiling;
    out.push(
      table(
        ['model', 'torch', 'python', 'frames/s (tracking)', 'ms/frame', 'frames/s (one pass per frame)', "vs the workers' torch"],
        runtimes.map(({ runtime, ceiling }) => {
          const ref = base(ceiling.model);
          return [
            ceiling.model,
            `${ceiling.torch}${runtime.workers ? " (the workers')" : ''}`,
            `\`${runtime.python}\``,
            fmtSpread(ceiling.fps.tracking),
            ms(1000 / ceiling.fps.tracking.median),
            fmtSpread(ceiling.fps.single),
            ref ? num(ceiling.fps.tracking.median / ref.fps.tracking.median) : 'n/a',
          ];
        }),
      ),
    );
    out.push('');
  }

  if (r.blazepose?.rows.length) {
    const bp = r.blazepose;
    out.push(`### BlazePose: the ceiling, one process (frames decoded, no IPC), ${bp.clip} (${bp.width}x${bp.height})`);
    out.push('');
    out.push(
      table(
        [
          'model',
          'threads',
          'frames/s as served (tracking)',
          'ms/frame',
          'frames/s one pass',
          'model calls/frame: as served, one pass',
          'frames with a person',
          'CPU/frame as served',
        ],
        bp.rows.map((c) => [
          c.model + (c.frames !== r.frames ? ` (first ${c.frames} frames)` : ''),
          String(c.threads),
          fmtSpread(c.fps.tracking),
          ms(1000 / c.fps.tracking.median),
          fmtSpread(c.fps.single),
          `${num(c.inferencesPerFrame.tracking)}, ${num(c.inferencesPerFrame.single)}`,
          c.posedPerFrame ? `${Math.round(100 * c.posedPerFrame.tracking)} %` : 'n/a',
          ms(c.cpuMsPerFrame.tracking),
        ]),
      ),
    );
    out.push('');
    out.push(
      `The ${r.frames} frames of ${bp.clip} (a footballer, the kind of clip BlazePose is made for), looped, sampled at 10 fps. ` +
        "As served (tracking): the detector on a batch's first frame, then each frame in the ROI from the one before (one landmark model call per frame). " +
        'One pass: tracking off, the detector and the landmark model on every frame (a frame where the detector finds nobody costs the detector only). ' +
        'Model calls per frame count both networks.',
    );
    out.push('');
  }

  out.push('### Targets');
  out.push('');
  const targets: string[][] = [];
  // e2e ≥ 0.9 × N × ceiling: judged on the longer video where it was run (the steady state), the 31-frame
  // clip's rows shown too (their fixed cost per video is a large share of a short upload).
  const e2eTarget = (e: EndToEndResult, label: string, verdict: boolean) => {
    const alone = ceilingFor(r, e.config.model, e.config.threads, 1);
    const goal = alone ? 0.9 * e.config.workers * alone.fps : NaN;
    const ok = met(Number.isFinite(goal) ? e.fps.median >= goal : null);
    targets.push([
      `${e.config.model} POSE_WORKERS=${e.config.workers}, ${label}: e2e ≥ 0.9 × N × ceiling`,
      `${num(e.fps.median)} vs ${num(goal)} frames/s (CPU per frame: ceiling ÷ e2e = ${alone ? num(alone.cpuMsPerFrame / cpuSum(e)) : 'n/a'})`,
      verdict ? ok : `${ok} (for information: judged on the longer video)`,
    ]);
  };
  for (const e of r.endToEnd) {
    const long = r.endToEndLong.find(
      (l) => l.config.model === e.config.model && l.config.workers === e.config.workers && l.config.threads === e.config.threads,
    );
    if (long) e2eTarget(long, `${long.clipFrames}-frame video`, true);
    e2eTarget(e, `${e.clipFrames}-frame clip`, !long);
  }
  for (const l of r.endToEndLong) {
    if (
      !r.endToEnd.some(
        (e) => e.config.model === l.config.model && e.config.workers === l.config.workers && e.config.threads === l.config.threads,
      )
    ) {
      e2eTarget(l, `${l.clipFrames}-frame video`, true);
    }
  }
  if (r.baseline && best) {
    const wall31 = (r.baseline.wallMs * r.frames) / r.baseline.frames;
    const x = wall31 / best.wallMs.median;
    targets.push(['warm pool ≥ 20× faster than one process per frame', `${num(x, 1)}×`, met(x >= 20)]);
  }
  if (r.scale && r.scale.rows.length >= 2) {
    const first = r.scale.rows[0];
    const last = r.scale.rows[r.scale.rows.length - 1];
    const x = last.serverPeakKb / first.serverPeakKb;
    targets.push([
      `server peak RSS at 3000 frames ≤ 1.5 × at 30`,
      `${mib(last.serverPeakKb)} at ${last.frames} / ${mib(first.serverPeakKb)} at ${first.frames} = ${num(x)}×`,
      last.frames >= 3000 ? met(x <= 1.5) : 'not measured (quick run stops at 1000 frames)',
    ]);
  }
  for (const p of r.peer) {
    const one = ceilingFor(r, p.model, 1, 1, 'single');
    if (!one) continue;
    const x = one.fps / p.fps.median;
    targets.push([`${p.model}: Python ≥ 3× TF.js-WASM (same work, 1 thread each)`, `${num(x, 1)}×`, met(x >= 3)]);
  }
  out.push(table(['target', 'measured', ''], targets));
  out.push('');
  for (const s of r.skipped) out.push(`- ${s.section}: ${s.reason}`);
  return out.join('\n');
}

export type { Spread };
