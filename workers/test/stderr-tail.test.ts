import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { StderrTail } from '../stderr-tail.js';

describe('StderrTail', () => {
  it('keeps the last N lines, joining lines split across chunks', () => {
    const seen: string[] = [];
    const tail = new StderrTail(3, 100, (l) => seen.push(l));
    tail.push('one\ntw');
    tail.push('o\nthree\r\nfour\nfi');
    expect(tail.snapshot()).toEqual(['three', 'four', 'fi']);
    tail.push('ve\n');
    expect(tail.snapshot()).toEqual(['three', 'four', 'five']);
    expect(seen).toEqual(['one', 'two', 'three', 'four', 'five']);
  });

  it('bounds line length and skips blank lines', () => {
    const tail = new StderrTail(5, 10);
    tail.push(`${'x'.repeat(50)}\n\n   \nok\n`);
    expect(tail.snapshot()).toEqual([`${'x'.repeat(10)}…`, 'ok']);
  });

  it('removes pipe-error words from what it reports', () => {
    const tail = new StderrTail();
    tail.push('OSError: write EPIPE\nBrokenPipeError: [Errno 32] Broken pipe\n');
    const text = tail.snapshot().join('\n');
    expect(text).not.toMatch(/EPIPE|EOF|broken pipe/i);
  });

  it('reads a stream to its end, keeping a last line without newline', async () => {
    const stream = new PassThrough();
    const tail = new StderrTail();
    const done = tail.attach(stream);
    stream.write('Traceback (most recent call last):\n');
    stream.end("ModuleNotFoundError: No module named 'cv2'");
    await done;
    expect(tail.snapshot()).toEqual(['Traceback (most recent call last):', "ModuleNotFoundError: No module named 'cv2'"]);
  });
});
