/**
 * The management transport's SigV4 signer gives the very headers the SDK's
 * own signer (@smithy/signature-v4, with its defaults) gives for the same
 * request, credentials and moment, so AWS accepts it as it accepts the SDK.
 */
import { createHash, createHmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { describe, expect, it } from 'vitest';
import { RequestSigner, type RequestToSign } from '../functions/aws/request-signer.js';
import type { EnvironmentCredentials } from '../functions/aws/environment-credentials.js';

/** SHA-256 and HMAC-SHA256 from node:crypto, in the shape the SDK's signer takes. */
type SourceData = string | ArrayBuffer | ArrayBufferView;

class NodeSha256 {
  private readonly hash;
  constructor(secret?: SourceData) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', bytesOf(secret));
  }
  update(data: SourceData): void {
    this.hash.update(bytesOf(data));
  }
  async digest(): Promise<Uint8Array> {
    return this.hash.digest();
  }
}

function bytesOf(data: SourceData): string | Buffer {
  if (typeof data === 'string') return data;
  return ArrayBuffer.isView(data) ? Buffer.from(data.buffer, data.byteOffset, data.byteLength) : Buffer.from(data);
}

async function sdkHeaders(request: RequestToSign, credentials: EnvironmentCredentials, region: string, at: Date): Promise<Record<string, string>> {
  const signer = new SignatureV4({ service: 'execute-api', region, credentials, sha256: NodeSha256 });
  const [hostname, port] = request.host.split(':');
  const headers: Record<string, string> = { host: request.host };
  if (request.body) Object.assign(headers, { 'content-type': 'application/octet-stream', 'content-length': String(request.body.length) });
  const signed = await signer.sign(
    { method: request.method, protocol: 'https:', hostname: hostname!, ...(port ? { port: Number(port) } : {}), path: request.path, query: {}, headers, ...(request.body ? { body: request.body } : {}) },
    { signingDate: at },
  );
  return signed.headers;
}

const SESSION: EnvironmentCredentials = { accessKeyId: 'ASIAEXAMPLE7Q2Z4KJ3X', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', sessionToken: 'IQoJb3JpZ2luX2VjEXAMPLE+token/with=chars' };
const KEYS_ONLY: EnvironmentCredentials = { accessKeyId: 'AKIAEXAMPLE', secretAccessKey: 'secret' };

const CASES: Array<{ name: string; request: RequestToSign; credentials: EnvironmentCredentials; region: string }> = [
  {
    name: 'a PostToConnection with a JSON body, an encoded id and a session token',
    request: { method: 'POST', host: 'abc123.execute-api.eu-west-1.amazonaws.com', path: '/prod/@connections/Lk3x%3DqA8IAMCJ4w%3D', body: Buffer.from('{"type":"chat","message":"héllo ✓"}') },
    credentials: SESSION,
    region: 'eu-west-1',
  },
  {
    name: 'a DeleteConnection without a body, to a host with a port',
    request: { method: 'DELETE', host: '127.0.0.1:3001', path: '/dev/@connections/abc%2Fdef%3D' },
    credentials: SESSION,
    region: 'us-east-1',
  },
  {
    name: 'keys without a session token, an empty body, a path with dot segments and reserved characters',
    request: { method: 'POST', host: 'localhost:9', path: "/a/./b/../stage/@connections/x!'()*y", body: Buffer.alloc(0) },
    credentials: KEYS_ONLY,
    region: 'ap-southeast-1',
  },
];

describe('the management transport signer', () => {
  for (const { name, request, credentials, region } of CASES) {
    it(`signs ${name} as the SDK does`, async () => {
      const at = new Date('2026-12-01T18:25:07.431Z');
      const ours = await new RequestSigner('execute-api', region, async () => credentials).sign(request, at.getTime());
      expect(ours).toEqual(await sdkHeaders(request, credentials, region, at));
    });
  }

  it('signs each request for its own moment and credentials, the derived key reused only where it fits', async () => {
    let credentials = SESSION;
    const signer = new RequestSigner('execute-api', 'us-east-1', async () => credentials);
    const request = CASES[1]!.request;
    for (const at of [new Date('2026-12-01T23:59:59.999Z'), new Date('2026-12-02T00:00:00.000Z'), new Date('2026-12-02T00:00:01.500Z')]) {
      expect(await signer.sign(request, at.getTime())).toEqual(await sdkHeaders(request, credentials, 'us-east-1', at));
    }
    // Rotated keys (a new session) sign with the new secret at once.
    credentials = { ...KEYS_ONLY };
    const at = new Date('2026-12-02T00:00:02.000Z');
    expect(await signer.sign(request, at.getTime())).toEqual(await sdkHeaders(request, credentials, 'us-east-1', at));
  });
});
