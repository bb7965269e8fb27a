/**
 * TLS for the emulator's port: handlers build the management endpoint from
 * the event as on AWS, `https://{domainName}/{stage}`, and `domainName` is the
 * Host the client connected to, so the one port speaks both. A connection's
 * first byte decides: 0x16 (a TLS handshake record) goes to the HTTPS server,
 * anything else to the plain one, where the WebSocket side stays `ws://` for
 * browsers (see routeByFirstByte).
 *
 * The certificate is made at start by the `openssl` CLI (node:crypto makes
 * keys, not X.509 certificates), self-signed for 127.0.0.1, ::1, localhost
 * and the host listened on, valid for two days. The functions trust it
 * through NODE_EXTRA_CA_CERTS, as a Lambda function would trust an extra CA.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import { isIP, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const TLS_HANDSHAKE_RECORD = 0x16;

export interface EmulatorCertificate {
  key: string;
  /** PEM; a client trusts the emulator by taking it as a CA. */
  cert: string;
  /** The certificate's file, for NODE_EXTRA_CA_CERTS. */
  certFile: string;
  remove(): Promise<void>;
}

/** undefined when there is no `openssl` to make one with. */
export async function makeCertificate(host: string): Promise<EmulatorCertificate | undefined> {
  const dir = await mkdtemp(join(tmpdir(), 'cloudsocket-emulator-tls-'));
  const remove = () => rm(dir, { recursive: true, force: true });
  const names = new Set(['IP:127.0.0.1', 'IP:::1', 'DNS:localhost', isIP(host) ? `IP:${host}` : `DNS:${host}`]);
  const keyFile = join(dir, 'key.pem');
  const certFile = join(dir, 'cert.pem');
  try {
    await promisify(execFile)('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', keyFile, '-out', certFile, '-days', '2',
      '-subj', '/CN=cloudsocket emulator', '-addext', `subjectAltName=${[...names].join(',')}`,
    ]);
  } catch (error) {
    await remove();
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  return { key: await readFile(keyFile, 'utf8'), cert: await readFile(certFile, 'utf8'), certFile, remove };
}

/**
 * Hands each new connection to the plain server, or, when it opens with a TLS
 * handshake, to the HTTPS server. The first bytes had to be read to look at
 * them; they are put back, and the TLS socket takes over the connection's
 * native handle and replays what was put back (node's TLSSocket reads a
 * wrapped socket's buffered bytes first), so TLS runs on the socket itself,
 * not over a JavaScript stream, and without a second loopback connection to
 * pipe it through (which cost a third more CPU per request).
 */
export function routeByFirstByte(socket: Socket, plain: HttpServer, secure: HttpsServer): void {
  socket.on('error', () => undefined);
  socket.once('data', (first: Buffer) => {
    socket.pause();
    socket.unshift(first);
    if (first[0] !== TLS_HANDSHAKE_RECORD) {
      plain.emit('connection', socket);
      socket.resume();
      return;
    }
    // Left paused: resumed, the plain socket would read on in JavaScript, beside the TLS socket on its handle.
    secure.emit('connection', socket);
  });
}
