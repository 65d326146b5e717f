/** Runs a command with its output streamed through to ours, keeping the tail for parsing. */
import { spawn } from 'node:child_process';

const KEEP = 256 * 1024;

/**
 * @param {string} command
 * @param {string[]} args
 * @param {Omit<import('node:child_process').SpawnOptions, 'stdio'>} [options]
 * @returns {Promise<{ code: number | null, output: string, error?: Error }>} code null: could not start
 */
export function streamRun(command, args, options = {}) {
  return new Promise((resolve) => {
    let output = '';
    /**
     * @param {Buffer} chunk
     * @param {NodeJS.WritableStream} sink
     */
    const keep = (chunk, sink) => {
      sink.write(chunk);
      output += chunk.toString('utf8');
      if (output.length > 2 * KEEP) output = output.slice(-KEEP);
    };
    let child;
    try {
      child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (error) {
      resolve({ code: null, output: '', error: error instanceof Error ? error : new Error(String(error)) });
      return;
    }
    child.stdout.on('data', (c) => keep(c, process.stdout));
    child.stderr.on('data', (c) => keep(c, process.stderr));
    child.on('error', (error) => resolve({ code: null, output, error }));
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), output }));
  });
}
