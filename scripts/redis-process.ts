/** A redis-server on loopback for the tests and the jobs soak: its own port and folder, stopped (and removed) at the end. */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './free-port.js';

/** The redis-server to run: POSEPOOL_REDIS_SERVER, else the one on PATH (as scripts/lib/test-tools.mjs finds it to install it). */
export function redisServerPath(): string | null {
  if (process.env.POSEPOOL_REDIS_SERVER) return process.env.POSEPOOL_REDIS_SERVER;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && existsSync(path.join(dir, 'redis-server'))) return path.join(dir, 'redis-server');
  }
  return null;
}

export function whyNoRedis(): string | null {
  const bin = redisServerPath();
  if (bin && existsSync(bin)) return null;
  return 'redis-server is absent (Debian/Ubuntu: apt-get install redis-server, which `npm test` does; or set POSEPOOL_REDIS_SERVER)';
}

/** One command over a raw connection (RESP), for figures and checks: a bulk string, an integer, or an array of bulk strings. */
export async function redisCommand(port: number, ...args: string[]): Promise<string | number | string[]> {
  const request = `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(request));
    let data = Buffer.alloc(0);
    const done = (value: string | number | string[]) => {
      socket.destroy();
      resolve(value);
    };
    socket.on('data', (d) => {
      data = Buffer.concat([data, d]);
      const text = data.toString('utf8');
      const head = text.slice(0, text.indexOf('\r\n'));
      if (!text.includes('\r\n')) return;
      if (head.startsWith(':')) return done(Number(head.slice(1)));
      if (head.startsWith('+')) return done(head.slice(1));
      if (head.startsWith('-')) return reject(new Error(head.slice(1)));
      if (head.startsWith('$')) {
        const n = Number(head.slice(1));
        const start = Buffer.byteLength(head) + 2;
        if (data.length >= start + n + 2) done(data.subarray(start, start + n).toString('utf8'));
        return;
      }
      if (head.startsWith('*')) {
        const count = Number(head.slice(1));
        const lines = text.split('\r\n');
        if (lines.length >= 2 * count + 2) done(lines.slice(1, 1 + 2 * count).filter((_, i) => i % 2 === 1));
      }
    });
    socket.on('error', reject);
  });
}

export interface TestRedis {
  url: string;
  port: number;
  /** Stops it (SIGTERM; with appendonly, the AOF is kept for start()). */
  stop(): Promise<void>;
  /** Starts it again on the same port and folder. */
  start(): Promise<void>;
  /** Stops it and removes its folder. */
  dispose(): Promise<void>;
}

/** The server answers PING. */
async function answers(port: number): Promise<boolean> {
  return redisCommand(port, 'PING').then(
    (reply) => reply === 'PONG',
    () => false,
  );
}

/** A redis-server on a free port; `stopped`: chosen but not started yet (start() later). */
export async function startRedis(opts: { appendonly?: boolean; stopped?: boolean } = {}): Promise<TestRedis> {
  const bin = redisServerPath();
  if (!bin) throw new Error(whyNoRedis() ?? 'no redis-server');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'e2e-scratch-redis-'));
  const port = await freePort();
  let child: ChildProcess | null = null;
  const start = async () => {
    const args = [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      opts.appendonly ? 'yes' : 'no',
    ];
    child = spawn(bin, args, { stdio: 'ignore' });
    const deadline = Date.now() + 10_000;
    while (!(await answers(port))) {
      if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer within 10 s`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const stop = async () => {
    const c = child as ChildProcess | null;
    child = null;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await exited;
  };
  if (!opts.stopped) await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop,
    start,
    dispose: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
