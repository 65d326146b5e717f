/** The one pino logger of the process; worker and request loggers are its children. */
import { type Logger, pino } from 'pino';

export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'posepool' },
    redact: { paths: ['req.headers.authorization'], censor: '[redacted]' },
  });
}
