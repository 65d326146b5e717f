/**
 * A TCP proxy in front of a test server that drops one upload's connection mid-body, as a mobile
 * network does: it forwards bytes both ways and counts what clients send; once the bytes sent on
 * connections carrying `PATCH /api/uploads/…` reach `cutAfterPatchBytes`, it forwards exactly that
 * many, then destroys both sides of that connection. Once; later connections pass untouched.
 */
import net from 'node:net';

export interface CuttingProxy {
  url: string;
  /** Bytes clients sent through the proxy (requests, headers included). */
  readonly bytesFromClients: number;
  /** Bytes sent on connections from their first PATCH on, up to the cut. */
  readonly patchBytes: number;
  /** Connections cut (0 or 1). */
  readonly cuts: number;
  close(): Promise<void>;
}

export async function startCuttingProxy(target: string, opts: { cutAfterPatchBytes?: number } = {}): Promise<CuttingProxy> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<net.Socket>();
  let bytesFromClients = 0;
  let patchBytes = 0;
  let cuts = 0;
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(port), hostname);
    sockets.add(client).add(upstream);
    let patching = false;
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    client.on('data', (chunk: Buffer) => {
      bytesFromClients += chunk.length;
      let counted = chunk;
      if (!patching) {
        const at = chunk.indexOf('PATCH /api/uploads/');
        if (at >= 0) {
          patching = true;
          counted = chunk.subarray(at);
        }
      }
      if (patching && opts.cutAfterPatchBytes !== undefined && cuts === 0) {
        const room = opts.cutAfterPatchBytes - patchBytes;
        if (counted.length >= room) {
          cuts++;
          patchBytes += room;
          const forward = chunk.subarray(0, chunk.length - counted.length + room);
          // The client stops at once; what the proxy had reached the server before the line went dead.
          client.destroy();
          upstream.write(forward, () => upstream.destroy());
          return;
        }
        patchBytes += counted.length;
      } else if (patching) {
        patchBytes += counted.length;
      }
      upstream.write(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${address.port}`,
    get bytesFromClients() {
      return bytesFromClients;
    },
    get patchBytes() {
      return patchBytes;
    },
    get cuts() {
      return cuts;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
