/**
 * A TCP relay between a client and a server whose link can be cut the way a
 * network vanishes: the client's side is dropped, while the server's side
 * stays open and silent. No FIN or RST reaches the server, which goes on
 * writing into a socket nobody reads, until its own liveness checks notice.
 */
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

export interface CuttableLink {
  /** The port clients connect to instead of the server's. */
  port: number;
  /** Cuts every connection relayed so far. */
  cut(): void;
  /** Ends everything, the server's sides included. */
  close(): Promise<void>;
}

export async function openCuttableLink(targetPort: number): Promise<CuttableLink> {
  const pairs: Array<{ client: Socket; upstream: Socket }> = [];
  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    pairs.push({ client, upstream });
    client.pipe(upstream);
    upstream.pipe(client);
    // A cut client side must not end the server's side with it.
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    cut() {
      for (const { client, upstream } of pairs) {
        upstream.unpipe(client);
        client.unpipe(upstream);
        // Nothing more is read from the server: its writes pile up in the kernel, as for a peer that is gone.
        upstream.pause();
        client.destroy();
      }
    },
    async close() {
      for (const { client, upstream } of pairs.splice(0)) {
        client.destroy();
        upstream.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
