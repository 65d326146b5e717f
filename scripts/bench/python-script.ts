/** Runs one of pose-service/bench/*.py with the workers' interpreter and reads the JSON it writes. */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { BenchContext } from './context.js';

export interface PythonRun<T> {
  /** Starts the script; resolves with its JSON output. */
  done: Promise<T>;
  pid: number | undefined;
}

export function startPythonScript<T>(ctx: BenchContext, script: string, args: string[], env: Record<string, string> = {}): PythonRun<T> {
  const tmp = mkdtempSync(path.join(ctx.workDir, 'py-'));
  const out = path.join(tmp, 'out.json');
  const child = spawn(ctx.python, [path.join(ctx.repo, 'pose-service', 'bench', script), ...args, '--out', out], {
    cwd: path.join(ctx.repo, 'pose-service'),
    env: { ...process.env, PYTHONUNBUFFERED: '1', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (s: string) => {
    stderr = (stderr + s).slice(-4000);
  });
  const done = new Promise<T>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      try {
        if (code !== 0) throw new Error(`${script} ${args.join(' ')} exited with ${code ?? signal}:\n${stderr}`);
        resolve(JSON.parse(readFileSync(out, 'utf8')) as T);
      } catch (err) {
        reject(err);
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
    });
  });
  return { done, pid: child.pid };
}

export function runPythonScript<T>(ctx: BenchContext, script: string, args: string[], env: Record<string, string> = {}): Promise<T> {
  return startPythonScript<T>(ctx, script, args, env).done;
}
