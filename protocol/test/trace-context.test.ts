/**
 * The trace context of `detect` (protocol.json `traceContext`, detect.ts), checked on both sides: the
 * names protocol.json declares are the fields the TypeScript types carry; a typed detect carries its
 * traceparent out and the worker's span back over vscode-jsonrpc; and the Python worker's stdlib module
 * (posepool_worker.trace_context) accepts the traceparents the server writes and refuses the ones the
 * server refuses, answering with a span in the shape `WorkerSpan` declares, times the server can read.
 */
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { ROOT_CONTEXT } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { createMessageConnection, StreamMessageReader, StreamMessageWriter } from 'vscode-jsonrpc/node';
import { contextOf, hrTimeOf } from '../../server/spans.js';
import { testPython } from '../../workers/test/support/prerequisites.js';
import { type DetectParams, DetectRequest, type DetectResult, PROTOCOL, type WorkerSpan } from '../index.js';

const SERVICE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'pose-service');
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN_ID = '00f067aa0ba902b7';
const TRACEPARENT = `00-${TRACE_ID}-${SPAN_ID}-01`;

const SPAN: WorkerSpan = {
  name: PROTOCOL.traceContext.spanName,
  traceId: TRACE_ID,
  spanId: 'b7ad6b7169203331',
  parentSpanId: SPAN_ID,
  startTimeUnixNano: '1765071234567890123',
  endTimeUnixNano: '1765071234612345678',
  attributes: { 'posepool.frames': 1, 'process.pid': 4242 },
};

/** Runs Python with posepool_worker importable (the module is stdlib only); its stdout parsed as JSON. */
function python<T>(script: string, arg: unknown): T {
  const out = execFileSync(testPython() ?? 'python3', ['-c', script, JSON.stringify(arg)], { cwd: SERVICE_DIR, encoding: 'utf8' });
  return JSON.parse(out) as T;
}

describe('trace context in detect (protocol.json traceContext)', () => {
  it('declares the names the types carry', () => {
    expect(PROTOCOL.traceContext).toMatchObject({ param: 'traceparent', resultField: 'span', spanName: 'worker.detect' });
    // Compile-time: the declared names are keys of the params and the result.
    const param: keyof DetectParams = PROTOCOL.traceContext.param;
    const field: keyof DetectResult = PROTOCOL.traceContext.resultField;
    expect([param, field]).toEqual(['traceparent', 'span']);
  });

  it('carries the traceparent to the worker and its span back (vscode-jsonrpc, in memory)', async () => {
    const toWorker = new PassThrough();
    const toServer = new PassThrough();
    const server = createMessageConnection(new StreamMessageReader(toServer), new StreamMessageWriter(toWorker));
    const worker = createMessageConnection(new StreamMessageReader(toWorker), new StreamMessageWriter(toServer));
    const seen: DetectParams[] = [];
    worker.onRequest(DetectRequest.type, (params): DetectResult => {
      seen.push(params);
      return {
        frames: params.frames.map((f) => ({ index: f.index, persons: [] })),
        timing: { decodeMs: 0, inferMs: 0, totalMs: 0 },
        ...(params.traceparent ? { span: SPAN } : {}),
      };
    });
    server.listen();
    worker.listen();
    const frames: DetectParams['frames'] = [{ index: 0, encoding: 'jpeg', width: 1, height: 1, data: '' }];
    const traced = await server.sendRequest(DetectRequest.type, { requestId: 'r', frames, traceparent: TRACEPARENT });
    const plain = await server.sendRequest(DetectRequest.type, { requestId: 'r', frames });
    expect(seen.map((p) => p.traceparent)).toEqual([TRACEPARENT, undefined]);
    expect(traced.span).toEqual(SPAN);
    expect('span' in plain).toBe(false);
    server.dispose();
    worker.dispose();
  });

  it('the Python worker accepts exactly the version-00 traceparents the server does', () => {
    const cases = [
      TRACEPARENT,
      `00-${TRACE_ID}-${SPAN_ID}-00`,
      `00-${'0'.repeat(32)}-${SPAN_ID}-01`,
      `00-${TRACE_ID}-${'0'.repeat(16)}-01`,
      `00-${TRACE_ID.toUpperCase()}-${SPAN_ID}-01`,
      `00-${TRACE_ID}-${SPAN_ID}-01-extra`,
      `00-${TRACE_ID.slice(1)}-${SPAN_ID}-01`,
      'garbage',
    ];
    const script = [
      'import json, sys',
      'from posepool_worker.trace_context import parse_traceparent',
      'print(json.dumps([parse_traceparent(t) is not None for t in json.loads(sys.argv[1])]))',
    ].join('\n');
    const pythonSays = python<boolean[]>(script, cases);
    const serverSays = cases.map((t) => contextOf(t) !== ROOT_CONTEXT);
    expect(pythonSays).toEqual(serverSays);
    expect(serverSays.filter(Boolean)).toHaveLength(2);
  });

  it('the Python worker answers a sampled traceparent with a WorkerSpan the server can read', () => {
    const script = [
      'import json, sys',
      'from posepool_worker.trace_context import DetectSpan',
      'span = DetectSpan.start(json.loads(sys.argv[1]))',
      'print(json.dumps(span.finish({"posepool.frames": 2})))',
    ].join('\n');
    const span = python<WorkerSpan>(script, TRACEPARENT);
    expect(Object.keys(span).sort()).toEqual(Object.keys(SPAN).sort());
    expect(span).toMatchObject({ name: PROTOCOL.traceContext.spanName, traceId: TRACE_ID, parentSpanId: SPAN_ID });
    expect(span.spanId).toMatch(/^[0-9a-f]{16}$/);
    const [start, end] = [hrTimeOf(span.startTimeUnixNano), hrTimeOf(span.endTimeUnixNano)];
    expect(start).not.toBeNull();
    expect(BigInt(span.endTimeUnixNano) >= BigInt(span.startTimeUnixNano)).toBe(true);
    expect(Math.abs(start![0] - Date.now() / 1000)).toBeLessThan(60); // Unix seconds, the wall clock's
    expect(end).not.toBeNull();
  });
});
