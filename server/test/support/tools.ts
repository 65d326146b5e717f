/** ffmpeg/ffprobe for tests: the same resolution the server uses. */

import type { MediaTools } from '../../media/media-tools.js';
import { resolveMediaTools } from '../../runtime/ffmpeg-path.js';

export function findTools(): MediaTools {
  const t = resolveMediaTools();
  return { ffmpeg: t.ffmpeg.path, ffprobe: t.ffprobe.path };
}
