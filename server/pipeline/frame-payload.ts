/**
 * Turns decoded frames into `detect` payloads for the chosen transport:
 * jpeg (bytes in the message, base64), rgb24 (raw pixels in the message, base64), file (a JPEG
 * written to the request's private temp directory; the worker reads it, the server deletes it) or
 * rgb24-file (raw pixels written there: no JPEG encode in ffmpeg, no decode in the worker, nothing
 * large in the message; the default, see BENCHMARKS.md).
 */
import { unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { FrameEncoding, FramePayload } from '../../protocol/index.js';
import type { DecodedFrame } from '../media/frame-source.js';

export async function toPayloads(frames: DecodedFrame[], transport: FrameEncoding, tempDir: string): Promise<FramePayload[]> {
  const settled = await Promise.allSettled(
    frames.map(async (f): Promise<FramePayload> => {
      const base = { index: f.index, width: f.width, height: f.height };
      if (transport === 'file' || transport === 'rgb24-file') {
        const file = path.join(tempDir, `frame-${String(f.index).padStart(6, '0')}.${transport === 'file' ? 'jpg' : 'rgb'}`);
        await writeFile(file, f.data);
        return { ...base, encoding: transport, path: file };
      }
      return { ...base, encoding: transport, data: f.data.toString('base64') };
    }),
  );
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  const made = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  if (failed) {
    await releasePayloads(made); // the files this batch did write (a write can fail half-way: a disk filling up)
    throw failed.reason;
  }
  return made;
}

export async function releasePayloads(payloads: FramePayload[]): Promise<void> {
  await Promise.all(payloads.map((p) => (p.path ? unlink(p.path).catch(() => undefined) : undefined)));
}
