/** A private (0700) temporary directory per request, removed on every path. */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export const TEMP_PREFIX = 'posepool-';

export async function withTempDir<T>(fn: (dir: string) => Promise<T>, parent = os.tmpdir()): Promise<T> {
  const dir = await mkdtemp(path.join(parent, TEMP_PREFIX));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
