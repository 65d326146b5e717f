/**
 * A job's files in the shared folder every replica mounts (POSE_STORAGE_DIR): its upload, one
 * checkpoint per posed batch of each segment, each segment's frames, and the merged result. Video
 * bytes and results never go into Redis.
 *
 *   <dir>/jobs/<id>/upload<ext>                     the received video (removed when the job ends)
 *   <dir>/jobs/<id>/segments/<k>/batches/<n>.json   segment k's batch n, written as the batch returns
 *   <dir>/jobs/<id>/segments/<k>.json               segment k's frames, once all its batches are back
 *   <dir>/jobs/<id>/result.json                     the response body, kept until the job expires
 */
import { randomUUID } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { PoolModelInfo } from '../../workers/index.js';
import type { BatchCheckpoints, PoseVideoTiming, TimedFrameResult } from '../pipeline/pose-video.js';

/** What a posed segment leaves for the merge. */
export interface SegmentOutcome {
  frames: TimedFrameResult[];
  model: PoolModelInfo;
  sampleFps: number;
  decodeWarning?: string;
  timing: PoseVideoTiming;
}

export class JobStorage {
  readonly root: string;

  constructor(storageDir: string) {
    this.root = path.join(storageDir, 'jobs');
  }

  dir(id: string): string {
    return path.join(this.root, id);
  }

  /** Moves the received upload into the job's folder (a copy when the temp dir is on another file system). */
  async keepUpload(id: string, file: string): Promise<string> {
    const dir = this.dir(id);
    await mkdir(path.join(dir, 'segments'), { recursive: true });
    const target = path.join(dir, `upload${path.extname(file)}`);
    try {
      await rename(file, target);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
      await copyFile(file, target);
    }
    return target;
  }

  private segment(id: string, k: number): string {
    return path.join(this.dir(id), 'segments', String(k));
  }

  /** Segment k's batches. Its folder is made here: never for a job whose folder has gone (cancelled, expired). */
  async checkpoints(id: string, k: number): Promise<BatchCheckpoints> {
    const batches = path.join(this.segment(id, k), 'batches');
    await stat(this.dir(id));
    await mkdir(batches, { recursive: true });
    const file = (n: number) => path.join(batches, `${n}.json`);
    return {
      saved: async (n) => {
        try {
          return JSON.parse(await readFile(file(n), 'utf8')) as TimedFrameResult[];
        } catch {
          return undefined; // none, or torn by a crash mid-write: pose the batch again
        }
      },
      save: async (n, frames) => {
        await writeWhole(file(n), JSON.stringify(frames));
      },
    };
  }

  async writeSegment(id: string, k: number, outcome: SegmentOutcome): Promise<void> {
    await writeWhole(`${this.segment(id, k)}.json`, JSON.stringify(outcome));
  }

  async readSegment(id: string, k: number): Promise<SegmentOutcome | undefined> {
    try {
      return JSON.parse(await readFile(`${this.segment(id, k)}.json`, 'utf8')) as SegmentOutcome;
    } catch {
      return undefined;
    }
  }

  /** Segment k's batch n, if it is saved (a reader following the job). */
  async readBatch(id: string, k: number, n: number): Promise<TimedFrameResult[] | undefined> {
    try {
      return JSON.parse(await readFile(path.join(this.segment(id, k), 'batches', `${n}.json`), 'utf8')) as TimedFrameResult[];
    } catch {
      return undefined;
    }
  }

  /** A posed segment's batches are no longer needed (its frames are in segments/<k>.json). */
  async dropCheckpoints(id: string, k: number): Promise<void> {
    await rm(this.segment(id, k), { recursive: true, force: true });
  }

  async writeResult(id: string, json: string): Promise<void> {
    await writeWhole(path.join(this.dir(id), 'result.json'), json);
  }

  async readResult(id: string): Promise<string | undefined> {
    try {
      return await readFile(path.join(this.dir(id), 'result.json'), 'utf8');
    } catch {
      return undefined;
    }
  }

  /** A succeeded job keeps only its result. */
  async keepOnlyResult(id: string): Promise<void> {
    const dir = this.dir(id);
    const entries = await readdir(dir).catch(() => [] as string[]);
    await Promise.all(entries.filter((e) => e !== 'result.json').map((e) => rm(path.join(dir, e), { recursive: true, force: true })));
  }

  async remove(id: string): Promise<void> {
    await rm(this.dir(id), { recursive: true, force: true });
  }

  /** Job folders with their last change (for the expiry sweep). */
  async list(): Promise<{ id: string; mtimeMs: number }[]> {
    const ids = await readdir(this.root).catch(() => [] as string[]);
    const out: { id: string; mtimeMs: number }[] = [];
    for (const id of ids) {
      const s = await stat(this.dir(id)).catch(() => null);
      if (s?.isDirectory()) out.push({ id, mtimeMs: s.mtimeMs });
    }
    return out;
  }
}

/**
 * Written to a name of its own, then renamed: a reader never sees half a file, and two runs of one
 * job (a replica that lost its lock and the one that took over, pid 1 in both pods) never share a temporary.
 */
async function writeWhole(file: string, data: string): Promise<void> {
  const tmp = `${file}.${randomUUID()}.tmp`;
  await writeFile(tmp, data);
  await rename(tmp, file);
}
