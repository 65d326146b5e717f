/** A 300-frame clip made from a committed fixture: messi-pan five times over (10 s at 30 fps), B-frames, a keyframe every 48 frames. */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { FIXTURES } from './fixtures.js';

export function loopClip(ffmpeg: string, dir: string, ext: 'mp4' | 'ts' = 'mp4'): string {
  const file = path.join(dir, `loop.${ext}`);
  execFileSync(ffmpeg, [
    ...['-v', 'error', '-y', '-stream_loop', '4', '-i', path.join(FIXTURES, 'messi-pan.mp4')],
    ...['-c:v', 'libx264', '-g', '48', '-bf', '2', '-pix_fmt', 'yuv420p', '-an', file],
  ]);
  return file;
}
