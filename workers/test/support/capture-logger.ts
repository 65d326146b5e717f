/** Test support: a pino logger whose lines are kept in memory (to assert on what was logged). */
import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';

export interface CapturedLogger {
  logger: Logger;
  /** Raw JSON lines, in order. */
  lines: string[];
  /** Parsed lines. */
  records(): Array<Record<string, unknown>>;
}

export function captureLogger(level: pino.LevelWithSilent = 'debug'): CapturedLogger {
  const lines: string[] = [];
  let partial = '';
  const stream = new Writable({
    write(chunk, _enc, cb) {
      const text = partial + chunk.toString();
      const parts = text.split('\n');
      partial = parts.pop() ?? '';
      for (const p of parts) if (p) lines.push(p);
      cb();
    },
  });
  const logger = pino({ level }, stream);
  return { logger, lines, records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}
