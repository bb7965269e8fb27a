/**
 * The API Gateway WebSocket events and results the handlers see, declared
 * here (no @types/aws-lambda) with the fields API Gateway actually sends.
 */
import type { Greeting } from '../../shared/engine.js';

export interface WebSocketRequestContext {
  routeKey: string;
  eventType: 'CONNECT' | 'MESSAGE' | 'DISCONNECT';
  /** Ends in "=". */
  connectionId: string;
  domainName: string;
  stage: string;
  apiId: string;
  requestId: string;
  extendedRequestId?: string;
  requestTime?: string;
  requestTimeEpoch?: number;
  connectedAt?: number;
  messageDirection?: 'IN';
  messageId?: string;
  disconnectStatusCode?: number;
  disconnectReason?: string;
  identity: { sourceIp: string; userAgent?: string; [key: string]: unknown };
}

export interface ConnectEvent {
  requestContext: WebSocketRequestContext & { eventType: 'CONNECT' };
  headers?: Record<string, string> | null;
  multiValueHeaders?: Record<string, string[]> | null;
  queryStringParameters?: Record<string, string> | null;
  multiValueQueryStringParameters?: Record<string, string[]> | null;
  isBase64Encoded?: boolean;
}

export interface MessageEvent {
  requestContext: WebSocketRequestContext & { eventType: 'MESSAGE' };
  body?: string | null;
  isBase64Encoded?: boolean;
}

export interface DisconnectEvent {
  requestContext: WebSocketRequestContext & { eventType: 'DISCONNECT' };
  headers?: Record<string, string> | null;
  multiValueHeaders?: Record<string, string[]> | null;
  isBase64Encoded?: boolean;
}

/** What $connect invokes the welcome function with (InvocationType Event). */
export interface WelcomePayload {
  connectionId: string;
  domainName: string;
  stage: string;
  /** What the admission decided for the greeting (a resume, or why one failed); absent for an ordinary connection. */
  greeting?: Greeting;
  /** Epoch ms when `$connect` queued the welcome, moments before it returned; absent, the welcome's own start is taken. */
  queuedAt?: number;
}

/** A route's answer. On $connect a non-2xx status refuses the handshake. */
export interface WebSocketResult {
  statusCode: number;
  headers?: Record<string, string>;
  body?: string;
}

/** The parts of the Lambda context the handlers use. */
export interface LambdaContext {
  awsRequestId?: string;
  getRemainingTimeInMillis?(): number;
}
