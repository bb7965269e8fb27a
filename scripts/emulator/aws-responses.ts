/**
 * HTTP answers in the shape AWS services give them. The SDK names an error
 * from the `x-amzn-errortype` header, not from the status, so the header is
 * what makes `error.name === 'GoneException'` work against the emulator.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(text)),
    'x-amzn-requestid': randomUUID(),
    ...headers,
  });
  res.end(text);
}

export function sendAwsError(res: ServerResponse, status: number, errorType: string, message: string, body: Record<string, unknown> = { message }): void {
  sendJson(res, status, body, { 'x-amzn-errortype': errorType });
}

/** Reads the body, stopping (and answering false) past `limit` bytes. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        resolve(undefined);
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
