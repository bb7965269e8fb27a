/**
 * Checks a request's AWS Signature Version 4 against the one set of
 * credentials the emulator hands its functions, as an AWS endpoint checks it
 * against IAM: the signature is recomputed from the request and compared.
 * The algorithm is AWS's "Create a signed AWS API request" (canonical request,
 * string to sign, HMAC key chain); the path is escaped once more, as the SDK
 * does for every service but S3 (@smithy/signature-v4 `getCanonicalPath`).
 */
import * as cryptoModule from 'node:crypto';
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export interface SigningCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  /** When set, a request carrying X-Amz-Security-Token must carry this one. */
  sessionToken?: string;
}

/** What the endpoint answers when the check fails: AWS's status, error type and message. */
export interface SignatureFailure {
  status: 403;
  errorType: 'MissingAuthenticationTokenException' | 'IncompleteSignatureException' | 'UnrecognizedClientException' | 'InvalidSignatureException';
  message: string;
}

const ALGORITHM = 'AWS4-HMAC-SHA256';
/** AWS refuses a signature dated more than 15 minutes from its own clock. */
const MAX_SKEW_MS = 15 * 60_000;

/** undefined when `req` (with `body`, already read) is signed for `service` with `credentials`. */
export function checkSignature(req: IncomingMessage, body: Buffer, service: string, credentials: SigningCredentials, now = Date.now()): SignatureFailure | undefined {
  const authorization = req.headers.authorization;
  if (!authorization) return fail('MissingAuthenticationTokenException', 'Missing Authentication Token');
  const parsed = parseAuthorization(authorization);
  const amzDate = header(req, 'x-amz-date');
  if (!parsed || !amzDate || !/^\d{8}T\d{6}Z$/.test(amzDate)) {
    return fail('IncompleteSignatureException', `Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters and an X-Amz-Date header. Authorization=${authorization.split(' ')[0]}`);
  }
  const scope = scopeOf(parsed.credential);
  if (scope.terminator !== 'aws4_request' || scope.service !== service || scope.date !== amzDate.slice(0, 8) || !scope.region || !parsed.signedHeaders.includes('host')) {
    return fail('IncompleteSignatureException', `Credential should be scoped to a valid region and to the service '${service}'.`);
  }
  const { accessKeyId, date, region } = scope;
  const token = header(req, 'x-amz-security-token');
  if (accessKeyId !== credentials.accessKeyId || (token !== undefined && credentials.sessionToken !== undefined && token !== credentials.sessionToken)) {
    return fail('UnrecognizedClientException', 'The security token included in the request is invalid.');
  }
  const signedAt = Date.UTC(
    Number(amzDate.slice(0, 4)),
    Number(amzDate.slice(4, 6)) - 1,
    Number(amzDate.slice(6, 8)),
    Number(amzDate.slice(9, 11)),
    Number(amzDate.slice(11, 13)),
    Number(amzDate.slice(13, 15)),
  );
  if (!(Math.abs(now - signedAt) <= MAX_SKEW_MS)) {
    return fail('InvalidSignatureException', `Signature expired: ${amzDate} is now earlier or later than 15 minutes from ${new Date(now).toISOString()}.`);
  }

  // What is signed is the body as it arrived (the canonical request's HashedPayload): a header
  // claiming another hash does not stand in for it, as it does not for AWS's services other than S3.
  const payloadHash = bodyHash(body);
  const claimedHash = header(req, 'x-amz-content-sha256');
  if (claimedHash !== undefined && claimedHash !== payloadHash) return fail('InvalidSignatureException', SIGNATURE_MISMATCH);
  const url = req.url ?? '/';
  const queryAt = url.indexOf('?');
  const rawPath = queryAt < 0 ? url : url.slice(0, queryAt);
  const rawQuery = queryAt < 0 ? '' : url.slice(queryAt + 1).split('?', 1)[0]!;
  let canonicalHeaders = '';
  for (const name of parsed.signedHeaders) canonicalHeaders += `${name}:${canonicalHeaderValue(header(req, name))}\n`;
  const canonicalRequest = `${req.method ?? 'GET'}\n${canonicalPath(rawPath || '/')}\n${canonicalQuery(rawQuery)}\n${canonicalHeaders}\n${parsed.signedHeaders.join(';')}\n${payloadHash}`;
  const stringToSign = `${ALGORITHM}\n${amzDate}\n${date}/${region}/${service}/aws4_request\n${sha256(canonicalRequest)}`;
  const expected = createHmac('sha256', signingKey(credentials.secretAccessKey, date, region, service)).update(stringToSign).digest();
  const given = Buffer.from(parsed.signature, 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return fail('InvalidSignatureException', SIGNATURE_MISMATCH);
  return undefined;
}

const SIGNATURE_MISMATCH =
  'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.';

interface CredentialScope {
  accessKeyId: string | undefined;
  date: string | undefined;
  region: string | undefined;
  service: string | undefined;
  terminator: string | undefined;
}

/** A caller sends the same Credential= on every request of a day: its parts are split once. */
const MAX_CACHED_SCOPES = 256;
const scopes = new Map<string, CredentialScope>();

function scopeOf(credential: string): CredentialScope {
  let scope = scopes.get(credential);
  if (scope === undefined) {
    const [accessKeyId, date, region, service, terminator] = credential.split('/');
    scope = { accessKeyId, date, region, service, terminator };
    if (scopes.size >= MAX_CACHED_SCOPES) scopes.clear();
    scopes.set(credential, scope);
  }
  return scope;
}

/** A fan-out posts one body many times over: its hash is kept for the next request. */
let lastBody: { bytes: Buffer; hash: string } | undefined;

function bodyHash(body: Buffer): string {
  if (lastBody === undefined || !lastBody.bytes.equals(body)) lastBody = { bytes: Buffer.from(body), hash: sha256(body) };
  return lastBody.hash;
}

/** Trimmed, inner runs of spaces as one (AWS's canonical header value). */
function canonicalHeaderValue(value: string | undefined): string {
  if (value === undefined) return '';
  const trimmed = value.trim();
  return /\s\s|[\t\r\n]/.test(trimmed) ? trimmed.replace(/\s+/g, ' ') : trimmed;
}

/** Past this many derived keys the cache starts over (a key per secret, day, region and service: a handful a day). */
const MAX_CACHED_SIGNING_KEYS = 256;
const signingKeys = new Map<string, Buffer>();

/**
 * The key chain HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request"):
 * four HMACs that depend on nothing in the request, so each is derived once a
 * day per secret, region and service, as the SDK's signer caches it too.
 */
function signingKey(secret: string, date: string, region: string, service: string): Buffer {
  const cacheKey = `${date}\n${region}\n${service}\n${secret}`;
  let key = signingKeys.get(cacheKey);
  if (key === undefined) {
    key = hmac(`AWS4${secret}`, date);
    for (const part of [region, service, 'aws4_request']) key = hmac(key, part);
    if (signingKeys.size >= MAX_CACHED_SIGNING_KEYS) signingKeys.clear();
    signingKeys.set(cacheKey, key);
  }
  return key;
}

function fail(errorType: SignatureFailure['errorType'], message: string): SignatureFailure {
  return { status: 403, errorType, message };
}

/** How every SDK writes the header; anything else goes through the general reading below, with the same result. */
const SDK_AUTHORIZATION = /^AWS4-HMAC-SHA256 Credential=([^,\s]+), ?SignedHeaders=([^,\s]+), ?Signature=([0-9a-f]{64})$/;

function parseAuthorization(value: string): { credential: string; signedHeaders: string[]; signature: string } | undefined {
  const usual = SDK_AUTHORIZATION.exec(value);
  if (usual) return { credential: usual[1]!, signedHeaders: headerList(usual[2]!), signature: usual[3]! };
  if (!value.startsWith(`${ALGORITHM} `)) return undefined;
  const fields = new Map<string, string>();
  for (const part of value.slice(ALGORITHM.length + 1).split(',')) {
    const at = part.indexOf('=');
    if (at > 0) fields.set(part.slice(0, at).trim(), part.slice(at + 1).trim());
  }
  const credential = fields.get('Credential');
  const signedHeaders = fields.get('SignedHeaders');
  const signature = fields.get('Signature');
  if (!credential || !signedHeaders || !signature || !/^[0-9a-f]{64}$/.test(signature)) return undefined;
  return { credential, signedHeaders: headerList(signedHeaders), signature };
}

/** A caller signs the same headers on every request: each list is split once (and never changed by its readers). */
const MAX_CACHED_HEADER_LISTS = 256;
const headerLists = new Map<string, string[]>();

function headerList(signedHeaders: string): string[] {
  let list = headerLists.get(signedHeaders);
  if (list === undefined) {
    list = signedHeaders.split(';');
    if (headerLists.size >= MAX_CACHED_HEADER_LISTS) headerLists.clear();
    headerLists.set(signedHeaders, list);
  }
  return list;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

/** The path as sent, normalised and escaped once more (so `%3A` is signed as `%253A`). */
function canonicalPath(path: string): string {
  if (isNormalPath(path)) return escape(path).replace(/%2F/g, '/');
  const segments: string[] = [];
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') segments.pop();
    else segments.push(segment);
  }
  const normalized = `/${segments.join('/')}${segments.length > 0 && path.endsWith('/') ? '/' : ''}`;
  return escape(normalized).replace(/%2F/g, '/');
}

/** No empty, `.` or `..` segment: normalising would leave it as it is. */
function isNormalPath(path: string): boolean {
  return path.startsWith('/') && !path.includes('//') && !path.includes('/./') && !path.includes('/../') && !path.endsWith('/.') && !path.endsWith('/..');
}

function canonicalQuery(query: string): string {
  if (query === '') return '';
  const pairs = query.split('&').filter(Boolean).map((pair) => {
    const at = pair.indexOf('=');
    const [name, value] = at < 0 ? [pair, ''] : [pair.slice(0, at), pair.slice(at + 1)];
    return [escape(safeDecode(name)), escape(safeDecode(value))] as const;
  });
  pairs.sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0));
  return pairs.map(([name, value]) => `${name}=${value}`).join('&');
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, '%20'));
  } catch {
    return text;
  }
}

/** RFC 3986 unreserved characters stay; everything else is %XX, as SigV4 wants. */
function escape(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Node's one-shot hash (20.12 and later) skips making a Hash object per call. */
const oneShotHash = (cryptoModule as { hash?: (algorithm: string, data: string | Buffer, encoding: 'hex') => string }).hash;

function sha256(data: string | Buffer): string {
  return oneShotHash ? oneShotHash('sha256', data, 'hex') : createHash('sha256').update(data).digest('hex');
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}
