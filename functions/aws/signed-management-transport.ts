/**
 * The @connections API without the SDK client around it: each
 * PostToConnection (and GetConnection, DeleteConnection) is one HTTP request on a keep-alive socket, signed by the
 * SDK's own SigV4 signer (@smithy/signature-v4, what the client itself signs
 * with). Through the client, its middleware stack costs several times the
 * signing per call, which at a fan-out of 1000 members is most of the
 * handler's CPU time (bench/aws.ts measures both). The errors are the
 * client's: 410 GoneException is 'gone'; 429 LimitExceededException and 5xx
 * are retried with the SDK's standard backoff (3 attempts, exponential with
 * full jitter from 100 ms); anything else (413 PayloadTooLargeException, 403
 * ForbiddenException) is thrown, named by `x-amzn-errortype` as the SDK names it.
 */
import * as cryptoModule from 'node:crypto';
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { SignatureV4 } from '@smithy/signature-v4';
import { CloudsocketError } from '../../shared/errors.js';
import type { SendOutcome, Transport } from '../../shared/transport.js';
import { credentialsFromEnvironment, type EnvironmentCredentials } from './environment-credentials.js';

export interface SignedManagementTransportOptions {
  /** `https://{domainName}/{stage}`, or where AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI points. */
  endpoint: string;
  region: string;
  /** Default: the environment's (where Lambda puts the function's). */
  credentials?: () => Promise<EnvironmentCredentials>;
  /** Sockets kept open to the endpoint: the fan-out's concurrency. */
  maxSockets: number;
}

/** An error answer of the API; `name` is the SDK's name for it (`LimitExceededException`, ...). */
export class ManagementApiError extends CloudsocketError {
  readonly $metadata: { httpStatusCode: number };
  constructor(name: string, status: number, message: string) {
    super('management_api_error', message);
    this.name = name;
    this.$metadata = { httpStatusCode: status };
  }
}

const MAX_ATTEMPTS = 3;
const RETRY_BASE_MS = 100;
const RETRY_CAP_MS = 20_000;

/** Node's one-shot hash (20.12 and later): no Hash object per call. */
const oneShotHash = (cryptoModule as { hash?: (algorithm: string, data: string | Buffer, encoding: 'buffer' | 'hex') => Buffer | string }).hash;

/** SHA-256 and HMAC-SHA256 for the signer, from node:crypto. */
class NodeSha256 {
  private readonly hmac: Hmac | undefined;
  /** A plain hash's input, hashed in one go at the end (the signer gives it in one piece). */
  private pending: Array<string | Buffer> = [];
  constructor(secret?: SourceData) {
    this.hmac = secret === undefined ? undefined : createHmac('sha256', bytesOf(secret));
  }
  update(data: SourceData): void {
    if (this.hmac) this.hmac.update(bytesOf(data));
    else this.pending.push(bytesOf(data));
  }
  async digest(): Promise<Uint8Array> {
    if (this.hmac) return this.hmac.digest();
    if (oneShotHash && this.pending.length === 1) return oneShotHash('sha256', this.pending[0]!, 'buffer') as Buffer;
    const hash: Hash = createHash('sha256');
    for (const data of this.pending) hash.update(data);
    return hash.digest();
  }
}

/** What the signer hashes (the SDK's SourceData). */
type SourceData = string | ArrayBuffer | ArrayBufferView;

function bytesOf(data: SourceData): string | Buffer {
  if (typeof data === 'string') return data;
  return ArrayBuffer.isView(data) ? Buffer.from(data.buffer, data.byteOffset, data.byteLength) : Buffer.from(data);
}

/** PostToConnection, GetConnection, DeleteConnection. */
type ManagementMethod = 'POST' | 'GET' | 'DELETE';

interface Answer {
  status: number;
  errorType?: string;
  body: string;
}

export class SignedManagementTransport implements Transport {
  private readonly url: URL;
  private readonly signer: SignatureV4;
  private readonly agent: http.Agent;
  private readonly request: typeof http.request;
  private readonly basePath: string;
  private readonly port: number | undefined;
  private lastPayload: Payload | undefined;

  constructor(options: SignedManagementTransportOptions) {
    this.url = new URL(options.endpoint.replace(/\/+$/, ''));
    this.basePath = this.url.pathname === '/' ? '' : this.url.pathname;
    this.port = this.url.port ? Number(this.url.port) : undefined;
    const credentials = keptUntilExpiry(options.credentials ?? (async () => credentialsFromEnvironment()));
    this.signer = new SignatureV4({ service: 'execute-api', region: options.region, credentials, sha256: NodeSha256 });
    const secure = this.url.protocol === 'https:';
    this.agent = secure ? new https.Agent({ keepAlive: true, maxSockets: options.maxSockets }) : new http.Agent({ keepAlive: true, maxSockets: options.maxSockets });
    this.request = secure ? https.request : http.request;
  }

  async send(connectionId: string, data: string): Promise<SendOutcome> {
    const answer = await this.call('POST', connectionId, data);
    if (answer.status === 410) return 'gone';
    if (answer.status >= 300) throw errorOf(answer);
    return 'sent';
  }

  /** GetConnection: whether API Gateway has the connection open (410: it has not, or no longer). */
  async isOpen(connectionId: string): Promise<boolean> {
    const answer = await this.call('GET', connectionId);
    if (answer.status === 410) return false;
    if (answer.status >= 300) throw errorOf(answer);
    return true;
  }

  /** DeleteConnection; API Gateway picks the close frame itself (no code or reason). */
  async close(connectionId: string, _code: number, _reason: string): Promise<void> {
    const answer = await this.call('DELETE', connectionId);
    if (answer.status >= 300 && answer.status !== 410) throw errorOf(answer);
  }

  /** Stops keeping sockets open (a test's or a tool's end; a Lambda container never needs it). */
  destroy(): void {
    this.agent.destroy();
  }

  private async call(method: ManagementMethod, connectionId: string, body?: string): Promise<Answer> {
    for (let attempt = 1; ; attempt++) {
      let answer: Answer | undefined;
      let failure: unknown;
      try {
        answer = await this.once(method, connectionId, body);
      } catch (error) {
        // A reused keep-alive socket the server had closed, or the endpoint unreachable a moment: the SDK retries these too.
        failure = error;
      }
      const retryable = answer === undefined || answer.status === 429 || answer.status >= 500;
      if (!retryable) return answer!;
      if (attempt >= MAX_ATTEMPTS) {
        if (answer) return answer;
        throw failure;
      }
      await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** (attempt - 1))));
    }
  }

  private async once(method: ManagementMethod, connectionId: string, body?: string): Promise<Answer> {
    const payload = body === undefined ? undefined : this.payloadOf(body);
    const path = `${this.basePath}/@connections/${encodeLabel(connectionId)}`;
    const headers: Record<string, string> = { host: this.url.host };
    if (payload) {
      // As the SDK client sends a blob payload; the hash is the one the signer would compute, given so it is not computed again.
      headers['content-type'] = 'application/octet-stream';
      headers['content-length'] = payload.length;
      headers['x-amz-content-sha256'] = payload.sha256;
    }
    const signed = await this.signer.sign({
      method,
      protocol: this.url.protocol,
      hostname: this.url.hostname,
      ...(this.port !== undefined ? { port: this.port } : {}),
      path,
      query: {},
      headers,
      ...(payload ? { body: payload.bytes } : {}),
    });
    return new Promise<Answer>((resolve, reject) => {
      const request = this.request({ method, host: this.url.hostname, port: this.port, path, headers: signed.headers, agent: this.agent }, (response) => {
        const status = response.statusCode ?? 0;
        response.on('error', reject);
        if (status < 300) {
          // A success has no body worth reading (PostToConnection's is empty).
          response.on('end', () => resolve({ status, body: '' })).resume();
          return;
        }
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const errorType = response.headers['x-amzn-errortype'];
          resolve({ status, ...(typeof errorType === 'string' ? { errorType } : {}), body: Buffer.concat(chunks).toString('utf8') });
        });
      });
      request.on('error', reject);
      request.end(payload?.bytes);
    });
  }

  /** A broadcast posts one body to every member: its bytes and hash are made once, not once per member. */
  private payloadOf(body: string): Payload {
    if (this.lastPayload?.text !== body) {
      const bytes = Buffer.from(body, 'utf8');
      this.lastPayload = { text: body, bytes, length: String(bytes.length), sha256: createHash('sha256').update(bytes).digest('hex') };
    }
    return this.lastPayload;
  }
}

interface Payload {
  text: string;
  bytes: Buffer;
  /** content-length */
  length: string;
  /** x-amz-content-sha256 */
  sha256: string;
}

/**
 * Credentials that expire within this are fetched again: the SDK's own margin
 * (EXPIRATION_MS in @smithy/core's memoizeIdentityProvider, 300,000 ms).
 */
const CREDENTIAL_REFRESH_MS = 5 * 60_000;

/**
 * The signer asks for credentials on every request; a Lambda's come from its
 * environment and stay for the container's life, so they are read once and
 * again only when they say they expire soon.
 */
function keptUntilExpiry(provider: () => Promise<EnvironmentCredentials>): () => Promise<EnvironmentCredentials> {
  let kept: EnvironmentCredentials | undefined;
  return async () => {
    if (kept && (kept.expiration === undefined || kept.expiration.getTime() - Date.now() > CREDENTIAL_REFRESH_MS)) return kept;
    kept = await provider();
    return kept;
  };
}

/** A path label as the SDK writes it: encodeURIComponent, and !'()* too. */
function encodeLabel(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Names as the SDK does: `x-amzn-errortype` up to its first ':' ("GoneException:http://..."), else by status. */
function errorOf(answer: Answer): ManagementApiError {
  const name = answer.errorType?.split(':')[0] || FALLBACK_NAMES[answer.status] || 'ManagementApiError';
  let message = `${name} (HTTP ${answer.status})`;
  try {
    const parsed = JSON.parse(answer.body) as { message?: unknown; Message?: unknown };
    const text = parsed.message ?? parsed.Message;
    if (typeof text === 'string' && text !== '') message = text;
  } catch {
    // Not JSON: the status says enough.
  }
  return new ManagementApiError(name, answer.status, message);
}

const FALLBACK_NAMES: Record<number, string> = {
  403: 'ForbiddenException',
  410: 'GoneException',
  413: 'PayloadTooLargeException',
  429: 'LimitExceededException',
};
