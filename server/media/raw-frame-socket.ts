/**
 * Raw frames from ffmpeg over a unix socket, read by the kernel straight into frame buffers.
 *
 * Why not ffmpeg's stdout: Node reads a pipe into a fresh 64 KB buffer per read (about 21 per
 * 768×576 RGB frame), which then has to be copied into the frame. That off-heap garbage drove V8
 * into a full mark-compact every ~11 frames (BENCHMARKS.md, "The remainder"). A socket can be read
 * with `onread`: ffmpeg listens (`-listen 1 unix:PATH`), we connect, and every read lands at the
 * next free byte of the frame being assembled. No intermediate buffer, no copy, no garbage.
 *
 * Backpressure: when a frame is full, reading stops until the consumer pulls the next frame
 * (ffmpeg then blocks on the full socket), so at most one frame waits here.
 */
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** The longest socket path we use: sun_path holds 108 bytes on Linux, 104 on macOS (NUL included). */
export const MAX_SOCKET_PATH_BYTES = 100;

/** Errors meaning "ffmpeg is not listening yet": it is still opening its input. */
const NOT_YET = new Set(['ENOENT', 'ECONNREFUSED']);

export class RawFrameSocket {
  private frame: Buffer;
  private filled = 0;
  private ready: Buffer | null = null;
  private ended = false;
  private wake: (() => void) | null = null;
  private socket: net.Socket | null = null;
  /** Why the socket could not be connected while ffmpeg was still running (EACCES, …), if it could not. */
  connectError: Error | null = null;

  /**
   * @param reuse assemble every frame in one buffer: a yielded frame is overwritten by the next one,
   *   so the consumer must be done with it before it pulls again.
   */
  constructor(
    private readonly frameBytes: number,
    private readonly reuse: boolean,
  ) {
    this.frame = Buffer.allocUnsafeSlow(frameBytes);
  }

  /**
   * Connects once ffmpeg listens, retrying while the socket file is missing or refuses.
   * Returns false when `stop()` says to give up first (ffmpeg exited, the request was aborted),
   * or when connecting fails otherwise (`connectError`; the caller then falls back to the pipe).
   */
  async connect(socketPath: string, stop: () => boolean): Promise<boolean> {
    for (let delayMs = 1; !stop(); delayMs = Math.min(delayMs * 2, 50)) {
      try {
        this.socket = await this.attempt(socketPath);
      } catch (err) {
        this.connectError = err as Error;
        return false;
      }
      if (this.socket) return true;
      await sleep(delayMs);
    }
    return false;
  }

  /** Whole frames in order, until ffmpeg closes its end (a partial last frame is dropped). */
  async *frames(): AsyncGenerator<Buffer> {
    const socket = this.socket;
    if (!socket) throw new Error('RawFrameSocket.frames() before connect()');
    for (;;) {
      while (!this.ready && !this.ended) await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = null;
      const frame = this.ready;
      if (!frame) return;
      this.ready = null;
      yield frame;
      if (!this.ended) socket.resume();
    }
  }

  close(): void {
    this.socket?.destroy();
  }

  private attempt(socketPath: string): Promise<net.Socket | null> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({
        path: socketPath,
        onread: {
          // Called for every read: the kernel writes into the unfilled rest of the current frame.
          buffer: () => this.frame.subarray(this.filled),
          callback: (nread: number) => this.onRead(nread),
        },
      });
      const notConnected = (err: NodeJS.ErrnoException) => {
        socket.destroy();
        if (NOT_YET.has(err.code ?? '')) resolve(null);
        else reject(err);
      };
      socket.once('error', notConnected);
      socket.once('connect', () => {
        socket.off('error', notConnected);
        socket.on('error', () => undefined); // a reset when ffmpeg is killed: ffmpeg's exit status tells what happened
        socket.once('close', () => {
          this.ended = true;
          this.wake?.();
        });
        resolve(socket);
      });
    });
  }

  /** Returning false stops reading (Node's onread contract) until `frames()` resumes the socket. */
  private onRead(nread: number): boolean {
    this.filled += nread;
    if (this.filled < this.frameBytes) return true;
    this.ready = this.frame;
    this.filled = 0;
    if (!this.reuse) this.frame = Buffer.allocUnsafeSlow(this.frameBytes);
    this.wake?.();
    return false;
  }
}
