/** Reads a server-sent events stream with fetch, for tests: every event until the stream ends. */
export interface SseEvent {
  id?: string;
  event: string;
  data: string;
}

export async function readEvents(
  url: string,
  opts: { headers?: Record<string, string>; timeoutMs?: number; onEvent?: (e: SseEvent) => void } = {},
): Promise<{ status: number; headers: Headers; events: SseEvent[] }> {
  const res = await fetch(url, { headers: opts.headers, signal: AbortSignal.timeout(opts.timeoutMs ?? 30_000) });
  const events: SseEvent[] = [];
  if (!res.body || res.status !== 200) return { status: res.status, headers: res.headers, events };
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of res.body) {
    buffer += decoder.decode(chunk as Uint8Array, { stream: true });
    for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const e: SseEvent = { event: 'message', data: '' };
      let hasData = false;
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue;
        const i = line.indexOf(':');
        const field = i < 0 ? line : line.slice(0, i);
        const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
        if (field === 'event') e.event = value;
        else if (field === 'id') e.id = value;
        else if (field === 'data') {
          e.data += (hasData ? '\n' : '') + value;
          hasData = true;
        }
      }
      if (hasData) {
        events.push(e);
        opts.onEvent?.(e);
      }
    }
  }
  return { status: res.status, headers: res.headers, events };
}
