/**
 * How an upload's body may arrive, like nginx's client_body_timeout: all of it within
 * UPLOAD_TIMEOUT_MS, and at least UPLOAD_MIN_BYTES_PER_S over every window of
 * UPLOAD_RATE_WINDOW_MS. A client that trickles bytes (one per second) or stops gets 408
 * UPLOAD_TIMEOUT and its connection closed, instead of holding an upload slot for as long as it likes.
 * Measured on the socket's bytesRead, polled: the body's parser is not touched.
 */
import type { Socket } from 'node:net';
import { ApiError } from '../errors.js';

export interface BodyLimits {
  timeoutMs: number;
  /** 0: no rate floor. */
  minBytesPerS: number;
  rateWindowMs: number;
}

export interface BodyWatch {
  /** Rejects with UPLOAD_TIMEOUT when a limit is crossed; never resolves. */
  readonly broken: Promise<never>;
  stop(): void;
}

export function watchBody(socket: Socket, limits: BodyLimits, now: () => number = Date.now): BodyWatch {
  const started = now();
  const samples: { at: number; bytes: number }[] = [{ at: started, bytes: socket.bytesRead }];
  const pollMs = Math.max(50, Math.min(1000, Math.floor(limits.rateWindowMs / 10)));
  let timer: NodeJS.Timeout | undefined;
  const broken = new Promise<never>((_, reject) => {
    timer = setInterval(() => {
      const t = now();
      const bytes = socket.bytesRead;
      samples.push({ at: t, bytes });
      if (t - started >= limits.timeoutMs) {
        reject(new ApiError('UPLOAD_TIMEOUT', `the upload took longer than ${limits.timeoutMs} ms (UPLOAD_TIMEOUT_MS)`));
        return;
      }
      // The oldest sample at least one window old: the bytes since then must reach the floor.
      while (samples.length > 1 && t - samples[1].at >= limits.rateWindowMs) samples.shift();
      const from = samples[0];
      if (limits.minBytesPerS > 0 && t - from.at >= limits.rateWindowMs) {
        const rate = ((bytes - from.bytes) * 1000) / (t - from.at);
        if (rate < limits.minBytesPerS) {
          reject(
            new ApiError(
              'UPLOAD_TIMEOUT',
              `the upload arrived at ${Math.floor(rate)} bytes/s over ${limits.rateWindowMs} ms, under UPLOAD_MIN_BYTES_PER_S (${limits.minBytesPerS})`,
            ),
          );
        }
      }
    }, pollMs);
  });
  broken.catch(() => undefined); // a stopped watch that had fired is nobody's unhandled rejection
  return {
    broken,
    stop: () => clearInterval(timer),
  };
}
