/**
 * Where resumable (tus) uploads wait for a job. Under the folder of ResumableConfig.dir:
 *
 *   tus/<id>, tus/<id>.json         @tus/file-store: the bytes received so far, and the upload's state
 *                                   (declared length, metadata, creation time); the offset is the file's size
 *   taken/<ms>-<id>-<r>/upload      a finished upload a job took (its bytes, moved out of tus/), and
 *   taken/<ms>-<id>-<r>/info.json   its state, kept until the job is accepted, to put it back otherwise
 *
 * A finished upload starts at most one job: taking it is a rename out of tus/, which one request
 * wins, on one replica or several sharing POSE_STORAGE_DIR. Every upload, finished or not, expires
 * UPLOAD_EXPIRY_S after its creation unless a job took it; the sweep removes its files.
 */
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { FileStore } from '@tus/file-store';
import type { FastifyBaseLogger } from 'fastify';
import { ApiError } from '../errors.js';
import { UPLOAD_ID_PATTERN } from './fields.js';
import { safe } from './receive-upload.js';

const UPLOAD_ID = new RegExp(UPLOAD_ID_PATTERN);

/** What happens to resumable uploads, for metrics. */
export type ResumableEvent = 'created' | 'finished' | 'taken' | 'returned' | 'refused' | 'expired';

export interface ResumableObserver {
  observeResumable(event: ResumableEvent): void;
  /** Bytes written into uploads (each PATCH's kept body). */
  observeResumableBytes(bytes: number): void;
}

/** An upload's state as @tus/file-store writes it (`<id>.json`). */
interface UploadInfo {
  id: string;
  size?: number;
  metadata?: Record<string, string | null>;
  creation_date?: string;
}

/** The video refusals that no retry of the same bytes could change: the upload is removed with them. */
const FINAL_REFUSALS = new Set(['NOT_A_VIDEO', 'UNDECODABLE_VIDEO', 'FRAME_TOO_LARGE']);

/** A finished upload a job request took: its file, until the job is accepted (remove) or refused (refused). */
export interface TakenUpload {
  id: string;
  file: string;
  bytes: number;
  /** The client's file name from Upload-Metadata (`filename`), sanitised, for logs only. */
  clientName: string;
  /** The job was accepted: what is left of the upload goes (the Redis engine has moved the file already). */
  remove(): Promise<void>;
  /** The job was refused: the upload goes back for a retry, unless its video itself was refused (415, 422, 413 FRAME_TOO_LARGE). */
  refused(err: unknown): Promise<void>;
}

export class ResumableStore {
  readonly tusDir: string;
  readonly takenDir: string;
  private store: Promise<FileStore> | null = null;

  constructor(
    readonly root: string,
    private readonly opts: {
      expiryMs: number;
      /** A taken upload older than this belongs to no job any more (the process that took it died): swept. */
      takenMaxMs: number;
      log: FastifyBaseLogger;
      observer?: ResumableObserver;
    },
  ) {
    this.tusDir = path.join(root, 'tus');
    this.takenDir = path.join(root, 'taken');
  }

  /** @tus/file-store on tus/, made on first use (a server that never sees a tus request leaves no folder). */
  datastore(): Promise<FileStore> {
    this.store ??= (async () => {
      await mkdir(this.tusDir, { recursive: true, mode: 0o700 });
      return new CountingFileStore({ directory: this.tusDir, expirationPeriodInMilliseconds: this.opts.expiryMs }, (bytes) =>
        this.opts.observer?.observeResumableBytes(bytes),
      );
    })();
    this.store.catch(() => (this.store = null)); // e.g. EACCES: the request fails, the next one tries again
    return this.store;
  }

  /**
   * Takes a finished upload for a job: UPLOAD_NOT_FOUND (404) when there is none by this id (never
   * made, expired, removed, or taken by another request), UPLOAD_INCOMPLETE (409) while bytes are missing.
   */
  async take(id: string): Promise<TakenUpload> {
    // The id becomes a path: nothing but the shape @tus/server gives (parseUploadJobBody checks it first, with BAD_FIELD).
    if (!UPLOAD_ID.test(id)) throw notFound('(malformed)');
    const data = path.join(this.tusDir, id);
    const infoFile = `${data}.json`;
    const info = await readInfo(infoFile);
    const bytes = await fileSize(data);
    if (!info || bytes === null) throw notFound(id);
    if (this.expired(info, Date.now())) throw notFound(id, 'it expired (UPLOAD_EXPIRY_S)');
    if (info.size === undefined || bytes < info.size) {
      throw new ApiError(
        'UPLOAD_INCOMPLETE',
        `upload ${id} has ${bytes} of ${info.size ?? 'an undeclared number of'} bytes: send the rest first (PATCH from its Upload-Offset)`,
        {
          details: { offset: bytes, length: info.size ?? null },
        },
      );
    }
    // A finished upload takes no more bytes: no PATCH can be writing to it, and the rename decides who has it.
    // A folder of this request's own (two requests may take the same upload in the same millisecond).
    await mkdir(this.takenDir, { recursive: true, mode: 0o700 });
    const dir = await mkdtemp(path.join(this.takenDir, `${Date.now()}-${id}-`));
    const file = path.join(dir, 'upload');
    try {
      await rename(data, file);
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw notFound(id);
      throw err;
    }
    await rename(infoFile, path.join(dir, 'info.json')).catch(() => undefined);
    this.opts.observer?.observeResumable('taken');
    return this.taken(id, dir, file, bytes, info);
  }

  private taken(id: string, dir: string, file: string, bytes: number, info: UploadInfo): TakenUpload {
    const { log, observer } = this.opts;
    let settled = false;
    return {
      id,
      file,
      bytes,
      clientName: safe(info.metadata?.filename ?? ''),
      remove: async () => {
        if (settled) return;
        settled = true;
        await rm(dir, { recursive: true, force: true });
      },
      // Never throws: the job's own refusal is what its client hears.
      refused: async (err) => {
        if (settled) return;
        settled = true;
        const code = (err as { code?: string })?.code ?? '';
        try {
          if (FINAL_REFUSALS.has(code)) {
            observer?.observeResumable('refused');
          } else {
            // Back where tus/ had it, bytes first (a HEAD in between sees bytes without state: 404, never a torn upload).
            await rename(file, path.join(this.tusDir, id));
            await rename(path.join(dir, 'info.json'), path.join(this.tusDir, `${id}.json`));
            observer?.observeResumable('returned');
          }
        } catch (e) {
          log.warn({ err: e, uploadId: id }, 'a refused job could not put its upload back: the client must upload again');
        }
        await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      },
    };
  }

  private expired(info: UploadInfo, now: number): boolean {
    const created = Date.parse(info.creation_date ?? '');
    return Number.isFinite(created) && now - created > this.opts.expiryMs;
  }

  /**
   * Removes expired uploads (finished or not, UPLOAD_EXPIRY_S after creation), bytes whose state is
   * gone (or never came) after as long, and taken uploads no job holds any more. Any replica may run
   * it on the shared folder at the same time as another: each removal tolerates the other's.
   */
  async sweep(now = Date.now()): Promise<{ expired: number; taken: number }> {
    let expired = 0;
    let taken = 0;
    const names = await readdir(this.tusDir).catch(() => [] as string[]);
    const present = new Set(names);
    for (const name of names) {
      const file = path.join(this.tusDir, name);
      if (name.endsWith('.json')) {
        const info = await readInfo(file);
        const old = info?.creation_date ? this.expired(info, now) : await olderThan(file, now, this.opts.expiryMs);
        if (!old) continue;
        await rm(file.slice(0, -'.json'.length), { force: true });
        await rm(file, { force: true });
        expired++;
        this.opts.observer?.observeResumable('expired');
      } else if (!present.has(`${name}.json`) && (await olderThan(file, now, this.opts.expiryMs))) {
        await rm(file, { recursive: true, force: true });
      }
    }
    for (const name of await readdir(this.takenDir).catch(() => [] as string[])) {
      const at = Number.parseInt(name, 10);
      if (Number.isFinite(at) && now - at <= this.opts.takenMaxMs) continue;
      await rm(path.join(this.takenDir, name), { recursive: true, force: true });
      taken++;
    }
    return { expired, taken };
  }

  /** Sweeps now and then every `everyMs` (unref'd) until the returned stop is called. */
  sweepEvery(everyMs: number): () => void {
    const run = () => {
      this.sweep().then(
        (r) => {
          if (r.expired || r.taken) this.opts.log.info(r, 'resumable uploads swept');
        },
        (err) => this.opts.log.warn({ err }, 'resumable uploads: sweep failed'),
      );
    };
    run();
    const timer = setInterval(run, everyMs);
    timer.unref();
    return () => clearInterval(timer);
  }
}

/** @tus/file-store, counting the bytes each write keeps (a cut PATCH keeps what arrived). */
class CountingFileStore extends FileStore {
  constructor(
    options: ConstructorParameters<typeof FileStore>[0],
    private readonly onBytes: (bytes: number) => void,
  ) {
    super(options);
  }

  override async write(readable: IncomingMessage | Readable, id: string, offset: number): Promise<number> {
    try {
      return await super.write(readable, id, offset);
    } finally {
      const size = await fileSize(path.join(this.directory, id));
      if (size !== null && size > offset) this.onBytes(size - offset);
    }
  }
}

function notFound(id: string, why = 'no upload by this id is waiting (never made, expired, deleted, or already used by a job)'): ApiError {
  return new ApiError('UPLOAD_NOT_FOUND', `upload ${id}: ${why}`);
}

async function readInfo(file: string): Promise<UploadInfo | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as UploadInfo;
  } catch {
    return undefined;
  }
}

async function fileSize(file: string): Promise<number | null> {
  try {
    const s = await stat(file);
    return s.isFile() ? s.size : null;
  } catch {
    return null;
  }
}

async function olderThan(file: string, now: number, ms: number): Promise<boolean> {
  try {
    return now - (await stat(file)).mtimeMs > ms;
  } catch {
    return false;
  }
}
