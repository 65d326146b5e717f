/**
 * Turns decoded frames into `detect` payloads for the chosen transport:
 * jpeg (bytes in the message, base64), rgb24 (raw pixels in the message, base64), file (a JPEG
 * written to the request's private temp directory; the worker reads it, the server deletes it) or
 * rgb24-file (raw pixels written there: no JPEG encode in ffmpeg, no decode in the worker, nothing
 * large in the message; the default, see BENCHMARKS.md).
 *
 * `spoolFrames` (the pipeline's path) does it frame by frame as ffmpeg delivers them, before frames
 * are grouped into batches, and is done with each frame before it pulls the next: so the frame
 * source can read every raw frame into one reused buffer and no raw frame waits for its batch in
 * memory (BENCHMARKS.md, "The remainder"). `toPayloads` does a batch at once (the transport bench).
 */
import { unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { FrameEncoding, FramePayload } from '../../protocol/index.js';
import { ApiError } from '../errors.js';
import type { DecodedFrame } from '../media/frame-source.js';

/** A frame handed over to the transport: its payload, and what the results need back. */
export interface SpooledFrame {
  payload: FramePayload;
  timeMs: number;
}

export async function toPayload(f: DecodedFrame, transport: FrameEncoding, tempDir: string): Promise<FramePayload> {
  const base = { index: f.index, width: f.width, height: f.height };
  if (transport === 'file' || transport === 'rgb24-file') {
    const file = path.join(tempDir, `frame-${String(f.index).padStart(6, '0')}.${transport === 'file' ? 'jpg' : 'rgb'}`);
    try {
      await writeFile(file, f.data);
    } catch (err) {
      await unlink(file).catch(() => undefined); // a write can fail half-way (a disk filling up)
      throw err;
    }
    return { ...base, encoding: transport, path: file };
  }
  return { ...base, encoding: transport, data: f.data.toString('base64') };
}

export async function toPayloads(frames: DecodedFrame[], transport: FrameEncoding, tempDir: string): Promise<FramePayload[]> {
  const settled = await Promise.allSettled(frames.map((f) => toPayload(f, transport, tempDir)));
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  const made = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  if (failed) {
    await releasePayloads(made); // the files this batch did write
    throw failed.reason;
  }
  return made;
}

/**
 * Payloads in frame order, each made as soon as its frame is decoded. A frame file that cannot be
 * written is the server's fault for the whole video: INTERNAL_ERROR naming POSE_TEMP_DIR. (Files
 * already written for a batch not yet sent are removed with the request's temp directory.)
 */
export async function* spoolFrames(
  frames: AsyncIterable<DecodedFrame>,
  transport: FrameEncoding,
  tempDir: string,
): AsyncGenerator<SpooledFrame> {
  for await (const f of frames) {
    let payload: FramePayload;
    try {
      payload = await toPayload(f, transport, tempDir);
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code ?? 'write failed';
      throw new ApiError('INTERNAL_ERROR', `could not hand frames to the workers: ${reason} writing to the temp folder (POSE_TEMP_DIR)`, {
        cause: err,
      });
    }
    yield { payload, timeMs: f.timeMs };
  }
}

export async function releasePayloads(payloads: FramePayload[]): Promise<void> {
  await Promise.all(payloads.map((p) => (p.path ? unlink(p.path).catch(() => undefined) : undefined)));
}
