/**
 * A TCP relay between a client and a server whose link can be cut the way a
 * network vanishes: the client's side is dropped, while the server's side
 * stays open and silent. No FIN or RST reaches the server, which goes on
 * writing into a socket nobody reads, until its own liveness checks notice.
 * While held, new connections wait unanswered, so a test decides what
 * happens while a client is away before it can come back.
 */
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

export interface CuttableLink {
  /** The port clients connect to instead of the server's. */
  port: number;
  /** `target` (a ws:// URL of the server, with its path) through the link. */
  url(target: string): string;
  /** Cuts every connection relayed so far. */
  cut(): void;
  /** Connections made from now on wait until `release()`. */
  hold(): void;
  /** Lets the waiting connections, and all later ones, through. */
  release(): void;
  /** Ends everything, the server's sides included. */
  close(): Promise<void>;
}

export async function openCuttableLink(targetPort: number): Promise<CuttableLink> {
  const pairs: Array<{ client: Socket; upstream: Socket }> = [];
  let waiting: Socket[] | undefined;
  const relay = (client: Socket) => {
    const upstream = connect(targetPort, '127.0.0.1');
    pairs.push({ client, upstream });
    client.pipe(upstream);
    upstream.pipe(client);
    // A cut client side must not end the server's side with it.
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
  };
  const server: Server = createServer((client) => {
    if (!waiting) return relay(client);
    // Unread until released: the upgrade request waits in the socket's buffer.
    waiting.push(client);
    client.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url(target) {
      const url = new URL(target);
      url.port = String(port);
      return url.href;
    },
    cut() {
      for (const { client, upstream } of pairs) {
        upstream.unpipe(client);
        client.unpipe(upstream);
        // Nothing more is read from the server: its writes pile up in the kernel, as for a peer that is gone.
        upstream.pause();
        client.destroy();
      }
    },
    hold() {
      waiting ??= [];
    },
    release() {
      const clients = waiting ?? [];
      waiting = undefined;
      for (const client of clients) if (!client.destroyed) relay(client);
    },
    async close() {
      for (const client of waiting?.splice(0) ?? []) client.destroy();
      for (const { client, upstream } of pairs.splice(0)) {
        client.destroy();
        upstream.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
