/**
 * Content-Length framing as the pool speaks it: vscode-jsonrpc's StreamMessageWriter/Reader over an
 * in-memory duplex (no process), the exact bytes on the wire, and a message framed by the Python
 * worker's own encoder (pose-service/posepool_worker/framing.py) read back by the TypeScript reader.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  createMessageConnection,
  type Message,
  type NotificationMessage,
  type RequestMessage,
  StreamMessageReader,
  StreamMessageWriter,
} from 'vscode-jsonrpc/node';
import { testPython } from '../../workers/test/support/prerequisites.js';
import { DetectRequest, type DetectResult, PROTOCOL, ReadyNotification, type ReadyParams } from '../index.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SERVICE_DIR = join(REPO, 'pose-service');

function collect(stream: PassThrough): () => Buffer {
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(Buffer.from(c)));
  return () => Buffer.concat(chunks);
}

function readMessages(stream: PassThrough, count: number): Promise<Message[]> {
  const reader = new StreamMessageReader(stream);
  const got: Message[] = [];
  return new Promise((resolve, reject) => {
    reader.onError(reject);
    reader.listen((msg) => {
      got.push(msg);
      if (got.length === count) {
        reader.dispose();
        resolve(got);
      }
    });
  });
}

/** A Python 3.9+ that can import the worker's stdlib-only framing module: the workers' own, else the first on PATH. */
function findPython(): string | null {
  for (const candidate of [testPython(), 'python3', 'python']) {
    if (!candidate) continue;
    try {
      execFileSync(candidate, ['-c', 'import sys; assert sys.version_info >= (3, 9)'], { stdio: 'ignore' });
      return candidate;
    } catch {
      // try the next
    }
  }
  return null;
}

describe('Content-Length framing (vscode-jsonrpc over an in-memory duplex)', () => {
  it('writes the exact header and body bytes, counting UTF-8 bytes, not characters', async () => {
    const wire = new PassThrough();
    const bytes = collect(wire);
    const writer = new StreamMessageWriter(wire);
    const message: RequestMessage = { jsonrpc: '2.0', id: 1, method: 'detect', params: { requestId: 'é-ß-🙂' } };
    await writer.write(message);
    const body = JSON.stringify(message);
    const bodyBytes = Buffer.byteLength(body, 'utf8');
    expect(bodyBytes).toBeGreaterThan(body.length); // multi-byte characters present
    expect(bytes().toString('utf8')).toBe(`Content-Length: ${bodyBytes}\r\n\r\n${body}`);
    expect(bytes().length).toBe(`Content-Length: ${bodyBytes}\r\n\r\n`.length + bodyBytes);
    writer.dispose();
  });

  it('reads messages split at any byte and several messages in one chunk', async () => {
    const wire = new PassThrough();
    const a = JSON.stringify({ jsonrpc: '2.0', method: 'worker/ready', params: { note: 'naïve' } });
    const b = JSON.stringify({ jsonrpc: '2.0', id: 7, result: { frames: [] } });
    const frame = (s: string) => Buffer.concat([Buffer.from(`Content-Length: ${Buffer.byteLength(s)}\r\n\r\n`), Buffer.from(s)]);
    const all = Buffer.concat([frame(a), frame(b)]);
    const reading = readMessages(wire, 2);
    for (let i = 0; i < all.length; i += 3) wire.write(all.subarray(i, i + 3)); // splits headers and UTF-8 sequences
    const got = await reading;
    expect(got).toEqual([JSON.parse(a), JSON.parse(b)]);
  });

  it('carries a typed request and its response between two connections', async () => {
    const toWorker = new PassThrough();
    const toServer = new PassThrough();
    const server = createMessageConnection(new StreamMessageReader(toServer), new StreamMessageWriter(toWorker));
    const worker = createMessageConnection(new StreamMessageReader(toWorker), new StreamMessageWriter(toServer));
    worker.onRequest(
      DetectRequest.type,
      (params): DetectResult => ({
        frames: params.frames.map((f) => ({ index: f.index, persons: [] })),
        timing: { decodeMs: 0, inferMs: 0, totalMs: 0 },
      }),
    );
    const ready = new Promise<ReadyParams>((resolve) => server.onNotification(ReadyNotification.type, resolve));
    server.listen();
    worker.listen();
    const info = {
      pid: 1,
      python: '/p',
      pythonVersion: '3.11',
      model: { name: 'synthetic', keypoints: [], skeleton: [] },
      device: 'cpu',
      threads: 1,
      versions: {},
      loadMs: 1,
    } satisfies ReadyParams;
    await worker.sendNotification(ReadyNotification.type, info);
    expect(await ready).toEqual(info);
    const result = await server.sendRequest(DetectRequest.type, {
      requestId: 'r',
      frames: [{ index: 3, encoding: 'jpeg', width: 1, height: 1, data: '' }],
    });
    expect(result.frames).toEqual([{ index: 3, persons: [] }]);
    expect(DetectRequest.method).toBe(PROTOCOL.methods.detect);
    server.dispose();
    worker.dispose();
  });

  const python = existsSync(join(SERVICE_DIR, 'posepool_worker', 'framing.py')) ? findPython() : null;
  it.skipIf(!python)('parses a message framed by the Python worker (posepool_worker.framing)', async () => {
    const params = { type: 'ModuleNotFoundError', message: "No module named 'cv2'", hint: 'ünïcode ✓', python: '/venv/bin/python' };
    const script = [
      'import json, sys',
      'from posepool_worker.framing import encode_message',
      'params = json.loads(sys.argv[1])',
      `sys.stdout.buffer.write(encode_message({"jsonrpc": "2.0", "method": ${JSON.stringify(PROTOCOL.notifications.startupFailed)}, "params": params}))`,
    ].join('\n');
    const bytes = execFileSync(python as string, ['-c', script, JSON.stringify(params)], { cwd: SERVICE_DIR });
    const headerEnd = bytes.indexOf('\r\n\r\n');
    const header = bytes.subarray(0, headerEnd).toString('ascii');
    const body = bytes.subarray(headerEnd + 4);
    expect(header).toBe(`Content-Length: ${body.length}`);
    const wire = new PassThrough();
    const reading = readMessages(wire, 1);
    wire.end(bytes);
    const [msg] = (await reading) as NotificationMessage[];
    expect(msg.method).toBe('worker/startupFailed');
    expect(msg.params).toEqual(params);
  });
});
