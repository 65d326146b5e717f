/**
 * The last lines a worker wrote to stderr: a bounded ring, fed chunk by chunk, for crash reports.
 * Each complete line is also handed to `onLine` (the worker's logger).
 */
import type { Readable } from 'node:stream';
import { sanitize } from './worker-errors.js';

export class StderrTail {
  private readonly lines: string[] = [];
  private partial = '';

  constructor(
    private readonly maxLines = 40,
    private readonly maxLineLength = 1000,
    private readonly onLine?: (line: string) => void,
  ) {}

  /** Reads `stream` to its end; resolves when it ends or closes. */
  attach(stream: Readable): Promise<void> {
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => this.push(chunk));
    return new Promise((resolve) => {
      const done = () => {
        this.flush();
        resolve();
      };
      stream.once('end', done);
      stream.once('close', done);
      stream.once('error', done);
    });
  }

  push(chunk: string): void {
    const text = this.partial + chunk;
    const parts = text.split(/\r?\n/);
    this.partial = parts.pop() ?? '';
    if (this.partial.length > this.maxLineLength * 4) {
      // A very long line without a newline: keep its end only.
      this.partial = this.partial.slice(-this.maxLineLength);
    }
    for (const part of parts) this.add(part);
  }

  /** Takes a trailing line that had no newline. */
  flush(): void {
    if (this.partial) {
      this.add(this.partial);
      this.partial = '';
    }
  }

  /** The last lines (a trailing partial line included), pipe-error words removed. */
  snapshot(): string[] {
    const out = this.lines.map(sanitize);
    if (this.partial) out.push(sanitize(this.partial.slice(-this.maxLineLength)));
    return out.slice(-this.maxLines);
  }

  private add(raw: string): void {
    const line = raw.length > this.maxLineLength ? `${raw.slice(0, this.maxLineLength)}…` : raw;
    if (!line.trim()) return;
    this.lines.push(line);
    if (this.lines.length > this.maxLines) this.lines.shift();
    this.onLine?.(line);
  }
}
