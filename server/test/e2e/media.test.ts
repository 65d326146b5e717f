import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { extractFrames, type FrameSourceOptions, plannedDecodes, rawSocketPath } from '../../media/frame-source.js';
import { JpegSplitter } from '../../media/jpeg-splitter.js';
import { looksLikeVideoContainer, probeVideo } from '../../media/probe.js';
import { FIXTURES as FIX, IMAGES as IMG } from '../support/fixtures.js';
import { findTools } from '../support/tools.js';

const tools = findTools();
const tmp = mkdtempSync(path.join(os.tmpdir(), 'posepool-media-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function collect(gen: AsyncIterable<{ index: number; timeMs: number; data: Buffer }>) {
  const out = [];
  for await (const f of gen) out.push(f);
  return out;
}

/**
 * A variable-frame-rate clip, made once: five stills with a gap of about half a second after the
 * third (a concat list of durations), and its frame times in ms as ffprobe reads them (the oracle).
 * Its MP4 stream duration ends before its last frame.
 */
let vfrMade: { file: string; pts: number[] } | undefined;
function vfrClip(): { file: string; pts: number[] } {
  if (vfrMade) return vfrMade;
  const stills = [0, 1, 2, 3, 4].map((i) => {
    const f = path.join(tmp, `vfr-${i}.png`);
    execFileSync(tools.ffmpeg, [
      '-v',
      'error',
      '-y',
      '-i',
      path.join(FIX, 'messi-pan.mp4'),
      '-vf',
      `select=eq(n\\,${i * 10})`,
      '-frames:v',
      '1',
      f,
    ]);
    return f;
  });
  const durations = [0.04, 0.04, 0.54, 0.04, 0.04];
  const list = path.join(tmp, 'vfr.txt');
  writeFileSync(list, `${stills.map((f, i) => `file '${f}'\nduration ${durations[i]}`).join('\n')}\n`);
  const file = path.join(tmp, 'vfr.mp4');
  execFileSync(tools.ffmpeg, [
    '-v',
    'error',
    '-y',
    '-f',
    'concat',
    '-safe',
    '0',
    '-i',
    list,
    '-vsync',
    'vfr',
    '-c:v',
    'libx264',
    '-pix_fmt',
    'yuv420p',
    file,
  ]);
  const pts = execFileSync(
    tools.ffprobe,
    ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'frame=pts_time', '-of', 'csv=p=0', file],
    { encoding: 'utf8' },
  )
    .split('\n')
    .map((l) => parseFloat(l))
    .filter((t) => Number.isFinite(t))
    .map((t) => Math.round(t * 1000));
  vfrMade = { file, pts };
  return vfrMade;
}

describe('probeVideo', () => {
  it('reads size, fps, duration and codec of an H.264 clip', async () => {
    const v = await probeVideo(tools.ffprobe, path.join(FIX, 'messi-pan.mp4'));
    expect(v).toMatchObject({ width: 548, height: 342, fps: 30, rotation: 0, codec: 'h264' });
    expect(v.durationMs).toBeGreaterThanOrEqual(1900);
    expect(v.durationMs).toBeLessThanOrEqual(2100);
  });

  it('applies rotation metadata to the displayed size', async () => {
    const v = await probeVideo(tools.ffprobe, path.join(FIX, 'messi-rot90.mp4'));
    expect([90, 270]).toContain(v.rotation);
    expect({ w: v.width, h: v.height }).toEqual({ w: 342, h: 548 });
  });

  it('calls a still image NOT_A_VIDEO', async () => {
    await expect(probeVideo(tools.ffprobe, path.join(IMG, 'messi5.jpg'))).rejects.toMatchObject({ code: 'NOT_A_VIDEO', status: 415 });
  });

  it('calls an audio-only file NOT_A_VIDEO', async () => {
    const wav = path.join(tmp, 'tone.wav');
    execFileSync(tools.ffmpeg, ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'sine=frequency=440:duration=0.5', wav]);
    await expect(probeVideo(tools.ffprobe, wav)).rejects.toMatchObject({ code: 'NOT_A_VIDEO', message: expect.stringMatching(/audio/) });
  });

  it('calls an empty file and random bytes NOT_A_VIDEO', async () => {
    const empty = path.join(tmp, 'empty.mp4');
    writeFileSync(empty, '');
    await expect(probeVideo(tools.ffprobe, empty)).rejects.toMatchObject({ code: 'NOT_A_VIDEO' });
    const junk = path.join(tmp, 'junk.mp4');
    writeFileSync(junk, Buffer.from('this is not a video at all, just some text pretending'.repeat(20)));
    await expect(probeVideo(tools.ffprobe, junk)).rejects.toMatchObject({ code: 'NOT_A_VIDEO' });
  });

  it('calls a truncated MP4 (no moov) UNDECODABLE_VIDEO, without paths in the message', async () => {
    const full = readFileSync(path.join(FIX, 'messi-pan.mp4'));
    const cut = path.join(tmp, 'cut.mp4');
    // moov is at the end of ffmpeg's default MP4: keep the first half only.
    writeFileSync(cut, full.subarray(0, Math.floor(full.length / 2)));
    const err = await probeVideo(tools.ffprobe, cut).then(
      () => null,
      (e) => e,
    );
    expect(err).toMatchObject({ code: 'UNDECODABLE_VIDEO', status: 422 });
    expect(err.message).not.toContain(tmp);
  });

  it('recognises container magic numbers', () => {
    const mp4 = readFileSync(path.join(FIX, 'messi-pan.mp4')).subarray(0, 64);
    expect(looksLikeVideoContainer(mp4)).toBe(true);
    expect(looksLikeVideoContainer(Buffer.from('hello world, not a video'))).toBe(false);
  });
});

describe('extractFrames', () => {
  it('streams JPEG frames at the sampled rate with time stamps', async () => {
    const frames = await collect(
      extractFrames({
        ffmpeg: tools.ffmpeg,
        file: path.join(FIX, 'messi-pan.mp4'),
        fps: 10,
        maxFrames: 300,
        width: 548,
        height: 342,
        pixels: 'jpeg',
      }),
    );
    expect(frames.length).toBeGreaterThanOrEqual(19);
    expect(frames.length).toBeLessThanOrEqual(21);
    expect(frames.map((f) => f.index)).toEqual(frames.map((_, i) => i));
    expect(frames[1].timeMs).toBe(100);
    for (const f of frames) {
      expect(f.data[0]).toBe(0xff);
      expect(f.data[1]).toBe(0xd8);
      expect(f.data.at(-2)).toBe(0xff);
      expect(f.data.at(-1)).toBe(0xd9);
    }
  });

  it('stops at maxFrames', async () => {
    const frames = await collect(
      extractFrames({
        ffmpeg: tools.ffmpeg,
        file: path.join(FIX, 'vtest-3s.mp4'),
        fps: 10,
        maxFrames: 7,
        width: 768,
        height: 576,
        pixels: 'jpeg',
      }),
    );
    expect(frames).toHaveLength(7);
  });

  it('gives upright raw frames for a rotated clip', async () => {
    const frames = await collect(
      extractFrames({
        ffmpeg: tools.ffmpeg,
        file: path.join(FIX, 'messi-rot90.mp4'),
        fps: 5,
        maxFrames: 3,
        width: 342,
        height: 548,
        pixels: 'rgb24',
      }),
    );
    expect(frames).toHaveLength(3);
    for (const f of frames) expect(f.data.length).toBe(342 * 548 * 3);
  });

  it('with reuseFrameBuffer, yields the same raw frames (each read before the next pull) in one buffer', async () => {
    const o = {
      ffmpeg: tools.ffmpeg,
      file: path.join(FIX, 'vtest-3s.mp4'),
      fps: 10,
      maxFrames: 6,
      width: 768,
      height: 576,
      pixels: 'rgb24' as const,
    };
    const fresh = (await collect(extractFrames(o))).map((f) => f.data);
    const reused: Buffer[] = [];
    const buffers = new Set<ArrayBufferLike>();
    for await (const f of extractFrames({ ...o, reuseFrameBuffer: true })) {
      buffers.add(f.data.buffer);
      reused.push(Buffer.from(f.data)); // a copy, taken before the next pull overwrites it
    }
    expect(reused).toHaveLength(6);
    expect(buffers.size).toBe(1);
    expect(new Set(fresh.map((d) => d.buffer)).size).toBe(6);
    for (let i = 0; i < 6; i++) expect(reused[i].equals(fresh[i])).toBe(true);
    expect(reused[0].equals(reused[5])).toBe(false); // the clip moves: a stale buffer would not pass
  });

  it('throws UNDECODABLE_VIDEO when ffmpeg decodes nothing', async () => {
    const junk = path.join(tmp, 'junk2.mp4');
    writeFileSync(junk, Buffer.alloc(4096, 7));
    await expect(
      collect(extractFrames({ ffmpeg: tools.ffmpeg, file: junk, fps: 10, maxFrames: 5, width: 10, height: 10, pixels: 'jpeg' })),
    ).rejects.toMatchObject({ code: 'UNDECODABLE_VIDEO' });
  });

  it('stops ffmpeg when the consumer aborts', async () => {
    const ac = new AbortController();
    const got = [];
    for await (const f of extractFrames({
      ffmpeg: tools.ffmpeg,
      file: path.join(FIX, 'vtest-3s.mp4'),
      fps: 10,
      maxFrames: 30,
      width: 768,
      height: 576,
      pixels: 'jpeg',
      signal: ac.signal,
    })) {
      got.push(f);
      if (got.length === 2) ac.abort();
      if (got.length > 10) break;
    }
    expect(got.length).toBeLessThan(30);
  });
});

/** ffmpeg processes whose command line mentions `needle` (Linux: /proc). */
function ffmpegsMentioning(needle: string): number {
  let n = 0;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(needle)) n++;
    } catch {
      // exited meanwhile
    }
  }
  return n;
}

describe.skipIf(process.platform === 'win32')('extractFrames over a unix socket (rgb24 with socketDir)', () => {
  const sockDir = (name: string) => {
    const d = path.join(tmp, name);
    mkdirSync(d);
    return d;
  };
  const vtest = (more: Partial<FrameSourceOptions> = {}): FrameSourceOptions => ({
    ffmpeg: tools.ffmpeg,
    file: path.join(FIX, 'vtest-3s.mp4'),
    fps: 10,
    maxFrames: 8,
    width: 768,
    height: 576,
    pixels: 'rgb24',
    ...more,
  });

  it('yields the same frames as the pipe, fresh or in one reused buffer, and removes its socket', async () => {
    const piped = (await collect(extractFrames(vtest()))).map((f) => f.data);
    const dir = sockDir('same');
    const fresh: Buffer[] = [];
    let sawSocket = false;
    for await (const f of extractFrames(vtest({ socketDir: dir }))) {
      sawSocket ||= readdirSync(dir).some((n) => n.endsWith('.sock'));
      fresh.push(f.data);
    }
    expect(sawSocket).toBe(true);
    const reused: Buffer[] = [];
    const buffers = new Set<ArrayBufferLike>();
    for await (const f of extractFrames(vtest({ socketDir: dir, reuseFrameBuffer: true }))) {
      buffers.add(f.data.buffer);
      await new Promise((r) => setTimeout(r, 5)); // a slow consumer (a disk write): ffmpeg must wait, not overwrite
      reused.push(Buffer.from(f.data));
    }
    expect(piped).toHaveLength(8);
    expect(fresh).toHaveLength(8);
    expect(reused).toHaveLength(8);
    expect(new Set(fresh.map((d) => d.buffer)).size).toBe(8);
    expect(buffers.size).toBe(1);
    for (let i = 0; i < 8; i++) {
      expect(fresh[i].equals(piped[i])).toBe(true);
      expect(reused[i].equals(piped[i])).toBe(true);
    }
    expect(piped[0].equals(piped[7])).toBe(false);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('gives upright frames of a rotated clip whose frames are smaller than a socket read', async () => {
    const o: FrameSourceOptions = {
      ffmpeg: tools.ffmpeg,
      file: path.join(FIX, 'messi-rot90.mp4'),
      fps: 5,
      maxFrames: 4,
      width: 342,
      height: 548,
      pixels: 'rgb24',
    };
    const piped = (await collect(extractFrames(o))).map((f) => f.data);
    const viaSocket = (await collect(extractFrames({ ...o, socketDir: sockDir('rot'), reuseFrameBuffer: false }))).map((f) => f.data);
    expect(viaSocket).toHaveLength(4);
    for (let i = 0; i < 4; i++) expect(viaSocket[i].equals(piped[i])).toBe(true);
  });

  it('throws UNDECODABLE_VIDEO for an undecodable file after one ffmpeg run, and keeps the socket for the next video', async () => {
    const junk = path.join(tmp, 'junk-sock.mp4');
    writeFileSync(junk, Buffer.alloc(4096, 7));
    // A test double: the real ffmpeg, counting its runs.
    const runs = path.join(tmp, 'ffmpeg-runs.txt');
    const counting = path.join(tmp, 'ffmpeg-counting');
    writeFileSync(counting, `#!/bin/sh\necho run >> '${runs}'\nexec '${tools.ffmpeg}' "$@"\n`);
    chmodSync(counting, 0o755);
    const dir = sockDir('junk');
    await expect(collect(extractFrames(vtest({ ffmpeg: counting, file: junk, socketDir: dir })))).rejects.toMatchObject({
      code: 'UNDECODABLE_VIDEO',
      message: expect.not.stringContaining(tmp),
    });
    expect(readFileSync(runs, 'utf8').trim().split('\n')).toHaveLength(1); // the input's fault: not retried over the pipe
    expect(rawSocketPath(vtest({ ffmpeg: counting, socketDir: dir }))).not.toBeNull();
    expect(readdirSync(dir)).toEqual([]);
  });

  it('falls back to stdout for an ffmpeg that cannot listen on a socket, and remembers it', async () => {
    // A test double: the real ffmpeg, except that it refuses socket output as a build without the unix protocol does.
    const noSocket = path.join(tmp, 'ffmpeg-no-unix');
    writeFileSync(
      noSocket,
      `#!/bin/sh\nfor a in "$@"; do case "$a" in unix:*) echo "$a: Protocol not found" >&2; exit 1;; esac; done\nexec '${tools.ffmpeg}' "$@"\n`,
    );
    chmodSync(noSocket, 0o755);
    const dir = sockDir('fallback');
    const o = vtest({ ffmpeg: noSocket, socketDir: dir, maxFrames: 3 });
    expect(rawSocketPath(o)).not.toBeNull();
    const outcome: { socketFallback?: string } = {};
    const frames = await collect(extractFrames(o, outcome));
    expect(frames).toHaveLength(3);
    expect(outcome.socketFallback).toMatch(/could not listen on a unix socket: .*Protocol not found/);
    expect(outcome.socketFallback).not.toContain(tmp);
    expect(frames[2].data.length).toBe(768 * 576 * 3);
    expect(rawSocketPath(o)).toBeNull();
  });

  it('stops ffmpeg when the consumer aborts or stops pulling', async () => {
    const ac = new AbortController();
    const dir = sockDir('abort');
    let got = 0;
    for await (const _ of extractFrames(vtest({ socketDir: dir, maxFrames: 30, signal: ac.signal }))) {
      if (++got === 2) ac.abort();
      if (got > 10) break;
    }
    expect(got).toBeLessThan(30);
    const dir2 = sockDir('break');
    got = 0;
    for await (const _ of extractFrames(vtest({ socketDir: dir2, maxFrames: 30 }))) if (++got === 3) break;
    expect(got).toBe(3);
    await new Promise((r) => setTimeout(r, 100));
    if (process.platform === 'linux') {
      expect(ffmpegsMentioning(dir)).toBe(0);
      expect(ffmpegsMentioning(dir2)).toBe(0);
    }
    expect(readdirSync(dir)).toEqual([]);
    expect(readdirSync(dir2)).toEqual([]);
  });

  it('uses the pipe on Windows, for JPEG, and where the socket path would be too long', () => {
    expect(rawSocketPath(vtest({ socketDir: tmp }), 'win32')).toBeNull();
    expect(rawSocketPath(vtest({ socketDir: tmp, pixels: 'jpeg' }))).toBeNull();
    expect(rawSocketPath(vtest({ socketDir: path.join(tmp, 'x'.repeat(120)) }))).toBeNull();
    expect(rawSocketPath(vtest())).toBeNull();
    expect(rawSocketPath(vtest({ socketDir: tmp }))).toMatch(/\.sock$/);
  });
});

describe('extractFrames: sampling by real timestamps (short and variable-rate clips)', () => {
  /** An H.264 MP4 of the first `frames` frames of messi-pan.mp4 (30 fps), or of `seconds`. */
  const clip = (name: string, limit: string[]) => {
    const file = path.join(tmp, name);
    execFileSync(tools.ffmpeg, [
      '-v',
      'error',
      '-y',
      '-i',
      path.join(FIX, 'messi-pan.mp4'),
      ...limit,
      '-c:v',
      'libx264',
      '-pix_fmt',
      'yuv420p',
      file,
    ]);
    return file;
  };
  const times = async (file: string, fps: number, pixels: 'rgb24' | 'jpeg' = 'rgb24', socketDir?: string) =>
    (await collect(extractFrames({ ffmpeg: tools.ffmpeg, file, fps, maxFrames: 300, width: 548, height: 342, pixels, socketDir }))).map(
      (f) => f.timeMs,
    );

  // [clip, fps (default 10; above and below the 30 fps source), expected sample times in ms]
  const cases: [string, string[], number, number[]][] = [
    ['1 frame', ['-frames:v', '1'], 10, [0]],
    ['1 frame', ['-frames:v', '1'], 60, [0]],
    ['1 frame', ['-frames:v', '1'], 2, [0]],
    ['2 frames', ['-frames:v', '2'], 10, [0]],
    ['2 frames', ['-frames:v', '2'], 30, [0, 33]],
    ['2 frames', ['-frames:v', '2'], 1, [0]],
    ['0.15 s', ['-t', '0.15'], 10, [0, 100]],
    ['0.15 s', ['-t', '0.15'], 30, [0, 33, 67, 100, 133]],
    ['0.15 s', ['-t', '0.15'], 2, [0]],
  ];
  for (const [name, limit, fps, expected] of cases) {
    it(`${name} at ${fps} fps: ${expected.length} frame(s), the first at t = 0, each at its presentation time`, async () => {
      const file = clip(`${name.replace(/\W+/g, '-')}.mp4`, limit);
      expect(await times(file, fps)).toEqual(expected);
      expect(await times(file, fps, 'jpeg')).toEqual(expected);
      if (process.platform !== 'win32') expect(await times(file, fps, 'rgb24', mkdtempSync(path.join(tmp, 'sock-')))).toEqual(expected);
    });
  }

  it("a variable-frame-rate clip: each sample is the first frame at or after its grid time, at that frame's own time", async () => {
    const { file: vfr, pts } = vfrClip();
    expect(pts).toHaveLength(5);
    expect(pts[3] - pts[2]).toBeGreaterThan(400); // the gap is in the file
    const firstPerInterval = (fps: number) =>
      pts.filter((t, i) => i === 0 || Math.floor((t * fps) / 1000) > Math.floor((pts[i - 1] * fps) / 1000));
    expect(await times(vfr, 10)).toEqual(firstPerInterval(10)); // [0, ~640]: one sample per 100 ms interval that has a frame
    expect(await times(vfr, 10)).toHaveLength(2);
    expect(await times(vfr, 25)).toEqual(pts); // every frame, none duplicated across the gap
  });
});

describe('JpegSplitter', () => {
  it('splits JPEGs across arbitrary chunk boundaries', () => {
    const a = Buffer.from([0xff, 0xd8, 1, 2, 0xff, 0x00, 3, 0xff, 0xd9]);
    const b = Buffer.from([0xff, 0xd8, 9, 0xff, 0xd9]);
    const stream = Buffer.concat([a, b, a]);
    for (let size = 1; size <= stream.length; size++) {
      const s = new JpegSplitter();
      const out: Buffer[] = [];
      for (let i = 0; i < stream.length; i += size) out.push(...s.push(stream.subarray(i, i + size)));
      expect(out.map((x) => x.toString('hex'))).toEqual([a, b, a].map((x) => x.toString('hex')));
      expect(s.leftover).toBe(0);
    }
  });
});

describe('probeVideo: variable frame rate', () => {
  it('a VFR clip whose stream duration ends before its last frame: the duration covers the last frame, and fps is capped at the base rate', async () => {
    const { file: vfr, pts } = vfrClip();
    const lastFrameMs = Math.max(...pts);
    const v = await probeVideo(tools.ffprobe, vfr);
    expect(v.durationMs).toBeGreaterThan(lastFrameMs);
    expect(v.maxFps).toBeGreaterThanOrEqual(25);
  });
});

describe('plannedDecodes (MAX_DECODED_FRAMES)', () => {
  it('straight through: the span sampled times the source rate; unknown duration counts maxFrames / fps, unknown rate 240 fps', () => {
    expect(plannedDecodes({ fps: 10, maxFrames: 300, durationMs: 2000, sourceFps: 30 })).toBe(60);
    expect(plannedDecodes({ fps: 10, maxFrames: 300, durationMs: 600_000, sourceFps: 30 })).toBe(900);
    expect(plannedDecodes({ fps: 10, maxFrames: 300, durationMs: 0, sourceFps: 30 })).toBe(900);
    expect(plannedDecodes({ fps: 10, maxFrames: 300, durationMs: 0, sourceFps: 0 })).toBe(7200);
  });
  it('seeking: each sample counted as 10 s of frames decoded from its keyframe', () => {
    expect(plannedDecodes({ fps: 0.1, maxFrames: 3000, durationMs: 1_200_000, sourceFps: 30 })).toBe(120 * 10 * 30);
    // No duration: no seeking (nothing says where to stop), so straight through: far over any cap.
    expect(plannedDecodes({ fps: 0.01, maxFrames: 3000, durationMs: 0, sourceFps: 0 })).toBe(300_000 * 240);
  });
});

describe('extractFrames with a colour-forcing environment', () => {
  it("still reads each frame's time (ffmpeg is told not to colour its log lines)", async () => {
    const before = process.env.AV_LOG_FORCE_COLOR;
    process.env.AV_LOG_FORCE_COLOR = '1';
    try {
      const frames = await collect(
        extractFrames({
          ffmpeg: tools.ffmpeg,
          file: path.join(FIX, 'messi-pan.mp4'),
          fps: 5,
          maxFrames: 4,
          width: 548,
          height: 342,
          pixels: 'rgb24',
        }),
      );
      expect(frames.map((f) => f.timeMs)).toEqual([0, 200, 400, 600]);
    } finally {
      if (before === undefined) delete process.env.AV_LOG_FORCE_COLOR;
      else process.env.AV_LOG_FORCE_COLOR = before;
    }
  });
});

describe('extractFrames: MAX_DECODED_FRAMES while decoding', () => {
  it('stops after that many decoded frames, whatever the metadata promised at acceptance', async () => {
    const o = {
      ffmpeg: tools.ffmpeg,
      file: path.join(FIX, 'messi-pan.mp4'),
      fps: 30,
      maxFrames: 300,
      width: 548,
      height: 342,
      pixels: 'rgb24' as const,
    };
    expect(await collect(extractFrames(o))).toHaveLength(60); // 2 s at 30 fps
    const capped = await collect(extractFrames({ ...o, maxDecodedFrames: 15 }));
    expect(capped.map((f) => f.timeMs)).toEqual(Array.from({ length: 15 }, (_, i) => Math.round((i * 1000) / 30)));
  });
});
