/**
 * The Lambda events API Gateway sends for a WebSocket API, field for field as
 * captured from real invocations: CONNECT carries the handshake's headers and
 * query, MESSAGE the frame, DISCONNECT the close code and reason. Fields the
 * real events carry as null are null here too, so handlers that test for
 * presence behave as they will in the cloud.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { parseRequestTarget } from '../../shared/request-target.js';

/** What every event of one connection shares. */
export interface ConnectionFacts {
  connectionId: string;
  connectedAt: number;
  sourceIp: string;
  userAgent: string;
  /** The Host the client connected to. */
  domainName: string;
  stage: string;
  apiId: string;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** API Gateway's ids: 11 random bytes in URL-safe base64 with its padding, e.g. "XfGLwFTktjMFsLg=". */
export function gatewayId(): string {
  return randomBytes(11).toString('base64url') + '=';
}

/** The requestTime format of API Gateway: 13/Dec/2020:10:17:47 +0000. */
export function requestTime(epochMs: number): string {
  const d = new Date(epochMs);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} +0000`;
}

function requestContext(facts: ConnectionFacts, routeKey: string, eventType: string, now: number) {
  const requestId = gatewayId();
  return {
    routeKey,
    eventType,
    extendedRequestId: requestId,
    requestTime: requestTime(now),
    messageDirection: 'IN',
    stage: facts.stage,
    connectedAt: facts.connectedAt,
    requestTimeEpoch: now,
    requestId,
    domainName: facts.domainName,
    connectionId: facts.connectionId,
    apiId: facts.apiId,
  };
}

/** Every identity field API Gateway sends on CONNECT; without an authorizer all but two are null. */
function fullIdentity(facts: ConnectionFacts) {
  return {
    cognitoIdentityPoolId: null,
    cognitoIdentityId: null,
    principalOrgId: null,
    cognitoAuthenticationType: null,
    userArn: null,
    userAgent: facts.userAgent,
    accountId: null,
    caller: null,
    sourceIp: facts.sourceIp,
    accessKey: null,
    cognitoAuthenticationProvider: null,
    user: null,
  };
}

/**
 * Headers as API Gateway passes them: names in the case the client sent,
 * repeated headers in multiValueHeaders (the single-value map keeps the last),
 * plus the ones its front end adds.
 */
function handshakeHeaders(request: IncomingMessage, facts: ConnectionFacts, port: number) {
  const multi: Record<string, string[]> = {};
  const raw = request.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    const existing = Object.keys(multi).find((key) => key.toLowerCase() === name.toLowerCase());
    (multi[existing ?? name] ??= []).push(raw[i + 1]!);
  }
  const added: Record<string, string> = {
    'X-Amzn-Trace-Id': `Root=1-${Math.floor(Date.now() / 1000).toString(16)}-${randomBytes(12).toString('hex')}`,
    'X-Forwarded-For': facts.sourceIp,
    'X-Forwarded-Port': String(port),
    'X-Forwarded-Proto': 'http',
  };
  for (const [name, value] of Object.entries(added)) multi[name] = [value];
  const single: Record<string, string> = {};
  for (const [name, values] of Object.entries(multi)) single[name] = values[values.length - 1]!;
  return { headers: single, multiValueHeaders: multi };
}

function query(searchParams: URLSearchParams) {
  if (searchParams.size === 0) return { queryStringParameters: null, multiValueQueryStringParameters: null };
  const multi: Record<string, string[]> = {};
  for (const [name, value] of searchParams) (multi[name] ??= []).push(value);
  const single: Record<string, string> = {};
  for (const [name, values] of Object.entries(multi)) single[name] = values[values.length - 1]!;
  return { queryStringParameters: single, multiValueQueryStringParameters: multi };
}

export function connectEvent(facts: ConnectionFacts, request: IncomingMessage, port: number, now = Date.now()) {
  const target = parseRequestTarget(request.url ?? '/');
  return {
    ...handshakeHeaders(request, facts, port),
    ...query(target?.query ?? new URLSearchParams()),
    requestContext: {
      ...requestContext(facts, '$connect', 'CONNECT', now),
      disconnectStatusCode: null,
      messageId: null,
      disconnectReason: null,
      identity: fullIdentity(facts),
    },
    isBase64Encoded: false,
  };
}

export function messageEvent(facts: ConnectionFacts, routeKey: string, body: string, now = Date.now()) {
  return {
    requestContext: {
      ...requestContext(facts, routeKey, 'MESSAGE', now),
      messageId: gatewayId(),
      identity: { sourceIp: facts.sourceIp, userAgent: facts.userAgent },
    },
    body,
    isBase64Encoded: false,
  };
}

export function disconnectEvent(facts: ConnectionFacts, statusCode: number, reason: string, now = Date.now()) {
  // The headers of a real DISCONNECT are not the client's: API Gateway sends these four.
  const headers = { Host: facts.domainName, 'x-api-key': '', 'X-Forwarded-For': '', 'x-restapi': '' };
  return {
    headers,
    multiValueHeaders: Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, [value]])),
    requestContext: {
      ...requestContext(facts, '$disconnect', 'DISCONNECT', now),
      disconnectStatusCode: statusCode,
      disconnectReason: reason,
      identity: { sourceIp: facts.sourceIp, userAgent: facts.userAgent },
    },
    isBase64Encoded: false,
  };
}

export type ConnectEvent = ReturnType<typeof connectEvent>;
export type MessageEvent = ReturnType<typeof messageEvent>;
export type DisconnectEvent = ReturnType<typeof disconnectEvent>;
