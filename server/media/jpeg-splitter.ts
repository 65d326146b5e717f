/**
 * Splits ffmpeg's `image2pipe` MJPEG output into one Buffer per JPEG.
 * ffmpeg's mjpeg encoder writes baseline JPEGs without embedded thumbnails, and inside
 * entropy-coded data 0xFF is always stuffed (FF 00), so FF D9 marks the end of each image.
 */
export class JpegSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Offset in the concatenated pending bytes from which to look for the end marker. */
  private scanFrom = 0;

  /** Feed a chunk; returns the complete JPEGs it finished. */
  push(chunk: Buffer): Buffer[] {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    const out: Buffer[] = [];
    let buf = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingBytes);
    for (;;) {
      const end = buf.indexOf(EOI, Math.max(0, this.scanFrom - 1));
      if (end < 0) {
        this.scanFrom = buf.length;
        break;
      }
      const start = buf.indexOf(SOI);
      if (start < 0 || start > end) throw new Error('MJPEG stream out of sync: end marker before start marker');
      out.push(Buffer.from(buf.subarray(start, end + 2)));
      buf = buf.subarray(end + 2);
      this.scanFrom = 0;
    }
    this.pending = buf.length ? [buf] : [];
    this.pendingBytes = buf.length;
    return out;
  }

  /** Bytes left over that never formed a whole JPEG. */
  get leftover(): number {
    return this.pendingBytes;
  }
}

const SOI = Buffer.from([0xff, 0xd8]);
const EOI = Buffer.from([0xff, 0xd9]);
