/** A 300-frame clip made from the committed 60-frame fixture (fan-out's tests and benchmark): five times over, 10 s at 30 fps, B-frames, a keyframe every 48 frames. */
import { execFileSync } from 'node:child_process';
import path from 'node:path';

export function loopClip(ffmpeg: string, dir: string, messiPan: string, ext: 'mp4' | 'ts' = 'mp4'): string {
  const file = path.join(dir, `loop.${ext}`);
  execFileSync(ffmpeg, [
    ...['-v', 'error', '-y', '-stream_loop', '4', '-i', messiPan],
    ...['-c:v', 'libx264', '-g', '48', '-bf', '2', '-pix_fmt', 'yuv420p', '-an', file],
  ]);
  return file;
}
