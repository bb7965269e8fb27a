/**
 * AWS Signature Version 4 for the few request shapes the management
 * transport sends (POST or DELETE of one path, a blob body or none), giving
 * the same headers, byte for byte, as @smithy/signature-v4 (the SDK's signer)
 * with its defaults: host, content-type and content-length as given, then
 * x-amz-content-sha256, x-amz-date and x-amz-security-token added and signed,
 * the path escaped once more. test/aws.request-signer.test.ts holds the two
 * side by side. The general signer costs about five times the hashing it does
 * per request (a request clone, header sorting and regexes, a promise per
 * hash, an HMAC of the secret to find its cached key); at one request per
 * member of a room that is most of a fan-out's CPU time in the handler.
 */
import { createHash, createHmac } from 'node:crypto';
import type { EnvironmentCredentials } from './environment-credentials.js';

export interface RequestToSign {
  method: string;
  /** host[:port], as the Host header will carry it. */
  host: string;
  /** The path as it goes on the wire, already URL-encoded. */
  path: string;
  /** With a body: application/octet-stream, as the SDK client sends a blob. */
  body?: Buffer;
}

const ALGORITHM = 'AWS4-HMAC-SHA256';
const EMPTY_PAYLOAD_HASH = createHash('sha256').digest('hex');
/** A key per secret, day, region and service: a handful a day; past this many the cache starts over. */
const MAX_CACHED_KEYS = 64;

export class RequestSigner {
  private readonly keys = new Map<string, Buffer>();
  private lastSecond = -1;
  private lastLongDate = '';

  constructor(
    private readonly service: string,
    private readonly region: string,
    private readonly credentials: () => Promise<EnvironmentCredentials>,
  ) {}

  /** The request's headers, Authorization included. */
  async sign(request: RequestToSign, now = Date.now()): Promise<Record<string, string>> {
    const credentials = await this.credentials();
    const longDate = this.longDate(now);
    const shortDate = longDate.slice(0, 8);
    const payloadHash = request.body === undefined ? EMPTY_PAYLOAD_HASH : createHash('sha256').update(request.body).digest('hex');
    const host = canonicalValue(request.host);
    // Sorted by name, as the canonical request lists them.
    const signed: Array<[string, string]> = [];
    if (request.body !== undefined) signed.push(['content-length', String(request.body.length)], ['content-type', 'application/octet-stream']);
    signed.push(['host', host], ['x-amz-content-sha256', payloadHash], ['x-amz-date', longDate]);
    if (credentials.sessionToken) signed.push(['x-amz-security-token', canonicalValue(credentials.sessionToken)]);
    let canonicalHeaders = '';
    let signedHeaders = '';
    for (const [name, value] of signed) {
      canonicalHeaders += `${name}:${value}\n`;
      signedHeaders += signedHeaders === '' ? name : `;${name}`;
    }
    const canonicalRequest = `${request.method}\n${canonicalPath(request.path)}\n\n${canonicalHeaders}\n${signedHeaders}\n${payloadHash}`;
    const scope = `${shortDate}/${this.region}/${this.service}/aws4_request`;
    const stringToSign = `${ALGORITHM}\n${longDate}\n${scope}\n${createHash('sha256').update(canonicalRequest).digest('hex')}`;
    const signature = createHmac('sha256', this.signingKey(credentials.secretAccessKey, shortDate)).update(stringToSign).digest('hex');
    const headers: Record<string, string> = {};
    for (const [name, value] of signed) headers[name] = value;
    if (credentials.sessionToken) headers['x-amz-security-token'] = credentials.sessionToken;
    headers.host = request.host;
    headers.authorization = `${ALGORITHM} Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
    return headers;
  }

  /** 20261201T182500Z; the same string for every request within a second. */
  private longDate(now: number): string {
    const second = Math.floor(now / 1000);
    if (second !== this.lastSecond) {
      const iso = new Date(second * 1000).toISOString();
      this.lastLongDate = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
      this.lastSecond = second;
    }
    return this.lastLongDate;
  }

  /** HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request"): nothing of the request in it. */
  private signingKey(secret: string, shortDate: string): Buffer {
    const cacheKey = `${shortDate}\n${secret}`;
    let key = this.keys.get(cacheKey);
    if (key === undefined) {
      key = createHmac('sha256', `AWS4${secret}`).update(shortDate).digest();
      for (const part of [this.region, this.service, 'aws4_request']) key = createHmac('sha256', key).update(part).digest();
      if (this.keys.size >= MAX_CACHED_KEYS) this.keys.clear();
      this.keys.set(cacheKey, key);
    }
    return key;
  }
}

/** As the SDK's signer trims a header value: line breaks and runs of blanks become one space, none at the ends. */
function canonicalValue(value: string): string {
  return value.replace(/[\r\n]/g, ' ').replace(/[ \t]+/g, ' ').replace(/^ | $/g, '');
}

/**
 * The path normalised (empty and `.` segments dropped, `..` applied) and
 * escaped once more, so `%3D` is signed as `%253D`: how the SDK signs a path
 * for every service but S3, and so how an endpoint (the emulator's too) checks it.
 */
export function canonicalPath(path: string): string {
  const segments: string[] = [];
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') segments.pop();
    else segments.push(segment);
  }
  const normalized = `${path.startsWith('/') ? '/' : ''}${segments.join('/')}${segments.length > 0 && path.endsWith('/') ? '/' : ''}`;
  return uriEscape(normalized).replace(/%2F/g, '/');
}

/** RFC 3986: unreserved characters stay, everything else is %XX (encodeURIComponent leaves !'()* alone). */
export function uriEscape(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`);
}
