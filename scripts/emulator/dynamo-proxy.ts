/**
 * DynamoDB as the functions reach it: through the emulator's port, so each
 * call's signature and its actions on its tables are checked against the
 * calling function's role before it is passed on, as is, to the local
 * DynamoDB. A call is one POST to / with `X-Amz-Target:
 * DynamoDB_20120810.Operation`; the proxy reads the JSON body once (the
 * signature covers it) and keeps one pool of connections to the DynamoDB,
 * or, when that is the dynalite this process embeds, hands it each call as a
 * message to its thread (see dynalite-worker.mjs), the same headers and body.
 *
 * It also fills in what dynalite leaves out and DynamoDB sends: the item a
 * failed condition found, when the write asked for it with
 * `ReturnValuesOnConditionCheckFailure: ALL_OLD`. Without it a handler falls
 * back to reading the item, a call (and a permission) it would not need on AWS.
 *
 * Metering (`--cost`), it adds to the table's write units that dynalite
 * reports the indexes' share it does not: a single-item write's item is read
 * before and after it, and each global secondary index is charged by
 * DynamoDB's rules (index-write-units.ts). Those reads are the meter's own:
 * neither checked nor counted. A BatchWriteItem's index share is not counted.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import type { Logger } from '../../shared/log.js';
import { readBody, sendJson } from './aws-responses.js';
import type { CostMeter } from './cost-meter.js';
import { dynamoConditionKeys, type TableRequest } from './dynamo-condition-keys.js';
import { refusalMessage, type AccessControl, type Call } from './credentials.js';
import { embeddedDynaliteAt, type EmbeddedDynalite } from './dynamo.js';
import { indexWriteUnits, type IndexShape } from './index-write-units.js';

const TARGET_PREFIX = 'DynamoDB_20120810.';

interface Exchange {
  status: number;
  headers: IncomingMessage['headers'];
  body: Buffer;
}
/** DynamoDB's request size limit. */
const MAX_REQUEST_BYTES = 16 * 1024 * 1024;

/** A transaction's item kinds and the action each needs. */
const READS = new Set(['GetItem', 'BatchGetItem', 'Query', 'Scan', 'TransactGetItems']);
const WRITES = new Set(['PutItem', 'UpdateItem', 'DeleteItem', 'BatchWriteItem', 'TransactWriteItems']);
/** The writes of one item whose indexes' share the meter works out from the item before and after. */
const SINGLE_ITEM_WRITES = new Set(['PutItem', 'UpdateItem', 'DeleteItem']);

const TRANSACT_ACTIONS: Record<string, string> = {
  Put: 'PutItem',
  Update: 'UpdateItem',
  Delete: 'DeleteItem',
  ConditionCheck: 'ConditionCheckItem',
  Get: 'GetItem',
};

export class DynamoProxy {
  private readonly target: URL;
  private readonly agent: HttpAgent;
  private readonly embedded: EmbeddedDynalite | undefined;

  constructor(
    endpoint: string,
    private readonly access: AccessControl,
    private readonly region: string,
    private readonly accountId: string,
    private readonly logger: Logger,
    /** Each table's key attributes, to find the item a PutItem's failed condition was about. */
    private readonly keysOf: (tableName: string) => string[] | undefined,
    private readonly costMeter?: CostMeter,
    /** Each table's global secondary indexes, for the write units dynalite leaves out of what it reports. */
    private readonly indexesOf: (tableName: string) => IndexShape[] | undefined = () => undefined,
  ) {
    this.target = new URL(endpoint);
    this.agent = this.target.protocol === 'https:' ? new HttpsAgent({ keepAlive: true }) : new HttpAgent({ keepAlive: true });
    this.embedded = embeddedDynaliteAt(endpoint);
  }

  handles(req: IncomingMessage): boolean {
    const target = req.headers['x-amz-target'];
    return req.method === 'POST' && typeof target === 'string' && target.startsWith(TARGET_PREFIX);
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req, MAX_REQUEST_BYTES);
    if (body === undefined) return sendDynamoError(res, 413, 'RequestEntityTooLarge', `Request must be smaller than ${MAX_REQUEST_BYTES} bytes`);
    const operation = String(req.headers['x-amz-target']).slice(TARGET_PREFIX.length);
    let input: Record<string, unknown>;
    try {
      input = JSON.parse(body.toString('utf8') || '{}') as Record<string, unknown>;
    } catch {
      return sendDynamoError(res, 400, 'SerializationException', 'Start of structure or map found where not expected');
    }
    const refusal = this.access.check(req, body, 'dynamodb', this.callsOf(operation, input));
    if (refusal?.kind === 'signature') return sendDynamoError(res, 400, refusal.failure.errorType, refusal.failure.message);
    if (refusal) return sendDynamoError(res, 400, 'AccessDeniedException', refusalMessage(refusal));
    const kind = READS.has(operation) ? 'read' : WRITES.has(operation) ? 'write' : undefined;
    if (this.costMeter && kind) return this.metered(req.headers, operation, input, kind, res);
    const wantsOld = input.ReturnValuesOnConditionCheckFailure === 'ALL_OLD' && typeof input.TableName === 'string';
    if (!wantsOld) return this.forward(req.headers, body, res);
    return this.withOldItem(req.headers, body, operation, input, res);
  }

  /**
   * A read or write whose request units are counted: the local DynamoDB is
   * asked for them (ReturnConsumedCapacity) and, when the caller did not ask,
   * they are taken out of the answer again, with its checksum, which no longer fits.
   */
  private async metered(headers: IncomingMessage['headers'], operation: string, input: Record<string, unknown>, kind: 'read' | 'write', res: ServerResponse): Promise<void> {
    const asked = input.ReturnConsumedCapacity !== undefined && input.ReturnConsumedCapacity !== 'NONE';
    const body = Buffer.from(JSON.stringify(asked ? input : { ...input, ReturnConsumedCapacity: 'TOTAL' }));
    const written = kind === 'write' ? this.indexedWrites(operation, input) : [];
    const before = await Promise.all(written.map(({ tableName, key }) => this.currentItem(headers, tableName, key)));
    const answer = await this.exchange(headers, body);
    if (written.length > 0 && answer.status === 200) {
      // A batch's unprocessed writes did not happen: they are retried, and counted, when they come again.
      const unprocessed = operation === 'BatchWriteItem' ? this.indexedWrites(operation, { RequestItems: parseJson(answer.body)?.UnprocessedItems ?? {} }) : [];
      const skipped = new Set(unprocessed.map(({ tableName, key }) => keyText(tableName, key)));
      const units = await Promise.all(
        written.map(async ({ tableName, key, indexes }, at) => {
          if (skipped.has(keyText(tableName, key))) return 0;
          const after = await this.currentItem(headers, tableName, key);
          return indexes.reduce((total, index) => total + indexWriteUnits(before[at], after, index), 0);
        }),
      );
      this.costMeter!.capacity('write', units.reduce((total, each) => total + each, 0));
    }
    if ((await this.sendWithOldItem(headers, operation, input, answer, res)) === 'sent') return;
    const parsed = answer.status === 200 ? parseJson(answer.body) : undefined;
    if (!parsed) return void res.writeHead(answer.status, answer.headers).end(answer.body);
    const consumed = parsed.ConsumedCapacity;
    for (const entry of Array.isArray(consumed) ? consumed : consumed ? [consumed] : []) {
      this.costMeter!.capacity(kind, Number((entry as { CapacityUnits?: unknown }).CapacityUnits ?? 0));
    }
    if (asked) return void res.writeHead(answer.status, answer.headers).end(answer.body);
    const { ConsumedCapacity: _dropped, ...rest } = parsed;
    const { 'x-amz-crc32': _crc, 'content-length': _length, ...kept } = answer.headers;
    sendJson(res, 200, rest, kept as Record<string, string>);
  }

  private async withOldItem(headers: IncomingMessage['headers'], body: Buffer, operation: string, input: Record<string, unknown>, res: ServerResponse): Promise<void> {
    // DynamoDB returns the item with the failure in one step; here it is read after, and may be gone by then
    // (another request deleted it). The write is then tried again, as if it had come a moment later.
    for (let attempt = 1; ; attempt++) {
      const answer = await this.exchange(headers, body);
      const outcome = await this.sendWithOldItem(headers, operation, input, answer, res);
      if (outcome === 'sent') return;
      if (outcome === 'not_applicable' || attempt === 3) return void res.writeHead(answer.status, answer.headers).end(answer.body);
    }
  }

  /** Sends a failed condition that wanted the old item, with it: 'sent'; 'item_gone' when it no longer exists. */
  private async sendWithOldItem(
    headers: IncomingMessage['headers'],
    operation: string,
    input: Record<string, unknown>,
    answer: Exchange,
    res: ServerResponse,
  ): Promise<'sent' | 'not_applicable' | 'item_gone'> {
    if (answer.status !== 400 || input.ReturnValuesOnConditionCheckFailure !== 'ALL_OLD' || typeof input.TableName !== 'string') return 'not_applicable';
    const failure = parseJson(answer.body);
    const key = failure && String(failure.__type).endsWith('ConditionalCheckFailedException') && failure.Item === undefined ? this.keyOf(operation, input) : undefined;
    if (!key) return 'not_applicable';
    const read = await this.exchange(
      { ...headers, 'x-amz-target': `${TARGET_PREFIX}GetItem` },
      Buffer.from(JSON.stringify({ TableName: input.TableName, Key: key, ConsistentRead: true })),
      true,
    );
    const item = read.status === 200 ? parseJson(read.body)?.Item : undefined;
    if (item === undefined) return 'item_gone';
    sendJson(res, 400, { ...failure, Item: item }, { 'content-type': 'application/x-amz-json-1.0' });
    return 'sent';
  }

  /**
   * The items a write changes in tables that have global secondary indexes,
   * by table and key: one for PutItem, UpdateItem and DeleteItem, each put
   * and delete of a BatchWriteItem. (dynalite has no transactions.)
   */
  private indexedWrites(operation: string, input: Record<string, unknown>): Array<{ tableName: string; key: Record<string, unknown>; indexes: IndexShape[] }> {
    const parts: Array<[string, string, Record<string, unknown>]> = [];
    if (SINGLE_ITEM_WRITES.has(operation)) parts.push([String(input.TableName), operation, input]);
    if (operation === 'BatchWriteItem') {
      for (const [tableName, writes] of Object.entries((input.RequestItems ?? {}) as Record<string, unknown>)) {
        for (const write of Array.isArray(writes) ? (writes as Array<{ PutRequest?: Record<string, unknown>; DeleteRequest?: Record<string, unknown> }>) : []) {
          if (write?.PutRequest) parts.push([tableName, 'PutItem', write.PutRequest]);
          else if (write?.DeleteRequest) parts.push([tableName, 'DeleteItem', write.DeleteRequest]);
        }
      }
    }
    return parts.flatMap(([tableName, single, request]) => {
      const indexes = this.indexesOf(tableName);
      const key = indexes?.length ? this.keyOf(single, { ...request, TableName: tableName }) : undefined;
      return key ? [{ tableName, key, indexes: indexes! }] : [];
    });
  }

  private keyOf(operation: string, input: Record<string, unknown>): Record<string, unknown> | undefined {
    if (operation !== 'PutItem') return input.Key as Record<string, unknown> | undefined;
    const names = this.keysOf(String(input.TableName));
    const item = input.Item as Record<string, unknown> | undefined;
    if (!names || !item || names.some((name) => item[name] === undefined)) return undefined;
    return Object.fromEntries(names.map((name) => [name, item[name]]));
  }

  /**
   * What IAM checks for a call: its action on each table (or index) it
   * names, a transaction's items each by their own action, each with the
   * DynamoDB condition keys its part of the request carries.
   */
  private callsOf(operation: string, input: Record<string, unknown>): Call[] {
    const table = (name: unknown, index?: unknown) =>
      `arn:aws:dynamodb:${this.region}:${this.accountId}:table/${String(name)}${typeof index === 'string' ? `/index/${index}` : ''}`;
    const call = (action: string, name: unknown, request: TableRequest, index?: unknown): Call => ({
      action: `dynamodb:${action}`,
      resource: table(name, index),
      keys: dynamoConditionKeys(action, request, this.keysOf(String(name))),
    });
    if (operation === 'BatchGetItem') {
      return Object.entries((input.RequestItems ?? {}) as Record<string, Record<string, unknown>>).map(([name, part]) =>
        call(operation, name, { keys: listOf(part?.Keys), input: part ?? {} }),
      );
    }
    if (operation === 'BatchWriteItem') {
      return Object.entries((input.RequestItems ?? {}) as Record<string, Array<{ PutRequest?: { Item?: Item }; DeleteRequest?: { Key?: Item } }>>).map(([name, writes]) => {
        const list = Array.isArray(writes) ? writes : [];
        return call(operation, name, {
          items: list.flatMap((write) => (write?.PutRequest?.Item ? [write.PutRequest.Item] : [])),
          keys: list.flatMap((write) => (write?.DeleteRequest?.Key ? [write.DeleteRequest.Key] : [])),
          input: {},
        });
      });
    }
    if (operation === 'TransactWriteItems' || operation === 'TransactGetItems') {
      const items = Array.isArray(input.TransactItems) ? (input.TransactItems as Array<Record<string, Record<string, unknown> | undefined>>) : [];
      return items.flatMap((item) =>
        Object.entries(item ?? {}).flatMap(([kind, detail]) => {
          const action = TRANSACT_ACTIONS[kind];
          if (!action) return [];
          return [call(action, detail?.TableName, { keys: listOf(detail?.Key), items: listOf(detail?.Item), input: detail ?? {} })];
        }),
      );
    }
    if (typeof input.TableName === 'string') {
      return [call(operation, input.TableName, { keys: listOf(input.Key), items: listOf(input.Item), input }, input.IndexName)];
    }
    return [{ action: `dynamodb:${operation}`, resource: '*' }];
  }

  /** The item under `key` as it is now (a consistent read), for the meter. */
  private async currentItem(headers: IncomingMessage['headers'], tableName: string, key: Record<string, unknown>): Promise<Record<string, AttributeValue> | undefined> {
    const read = await this.exchange({ ...headers, 'x-amz-target': `${TARGET_PREFIX}GetItem` }, Buffer.from(JSON.stringify({ TableName: tableName, Key: key, ConsistentRead: true })), true);
    return read.status === 200 ? (parseJson(read.body)?.Item as Record<string, AttributeValue> | undefined) : undefined;
  }

  /** One request to the DynamoDB, its answer read whole; `own` for the proxy's own reads (see EmbeddedDynalite.call). */
  private exchange(headers: IncomingMessage['headers'], body: Buffer, own = false): Promise<Exchange> {
    if (this.embedded) return this.embedded.call(headers, body, { own });
    const send = this.target.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const upstream = send(this.target, { method: 'POST', agent: this.agent, headers: { ...headers, host: this.target.host, 'content-length': String(body.length) } }, (answer) => {
        const chunks: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => chunks.push(chunk));
        answer.on('end', () => resolve({ status: answer.statusCode ?? 500, headers: answer.headers, body: Buffer.concat(chunks) }));
        answer.on('error', reject);
      });
      upstream.on('error', reject);
      upstream.end(body);
    });
  }

  private forward(headers: IncomingMessage['headers'], body: Buffer, res: ServerResponse): Promise<void> {
    if (this.embedded) {
      return this.embedded.call(headers, body).then(
        (answer) => void res.writeHead(answer.status, answer.headers).end(answer.body),
        (error: unknown) => this.unreachable(error, res),
      );
    }
    const send = this.target.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve) => {
      const upstream = send(this.target, { method: 'POST', agent: this.agent, headers: { ...headers, host: this.target.host, 'content-length': String(body.length) } }, (answer) => {
        res.writeHead(answer.statusCode ?? 500, answer.headers);
        answer.pipe(res);
        answer.on('end', resolve);
        answer.on('error', () => resolve());
      });
      upstream.on('error', (error) => {
        this.unreachable(error, res);
        resolve();
      });
      upstream.end(body);
    });
  }

  private unreachable(error: unknown, res: ServerResponse): void {
    this.logger.error('dynamo_unreachable', { endpoint: this.target.href, error });
    if (!res.headersSent) sendDynamoError(res, 500, 'InternalServerError', 'Internal server error');
    else res.destroy();
  }

  close(): void {
    this.agent.destroy();
  }
}

type Item = Record<string, unknown>;

function listOf(value: unknown): Item[] {
  if (value === undefined || value === null) return [];
  return (Array.isArray(value) ? value : [value]).filter((entry): entry is Item => !!entry && typeof entry === 'object');
}

function parseJson(body: Buffer): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(body.toString('utf8'));
    return value && typeof value === 'object' ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** DynamoDB's error shape (JSON 1.0): the type in `__type`, where the SDK reads it; 400 for client errors, AccessDenied included. */
function sendDynamoError(res: ServerResponse, status: number, type: string, message: string): void {
  sendJson(res, status, { __type: `com.amazonaws.dynamodb.v20120810#${type}`, message }, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-errortype': type });
}

/** A table's item key as text, whatever order its attributes came in. */
function keyText(tableName: string, key: Record<string, unknown>): string {
  return JSON.stringify([tableName, Object.entries(key).sort(([a], [b]) => (a < b ? -1 : 1))]);
}
