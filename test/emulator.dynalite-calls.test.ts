/**
 * The embedded dynalite takes calls as messages to its thread besides HTTP
 * on its port (the emulator's DynamoDB proxy uses them). A call must be
 * answered exactly as the same request over HTTP is: status, body, checksum
 * and content type, for successes and for every kind of error dynalite makes.
 */
import { request } from 'node:http';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DYNALITE_REQUEST_CHANNEL, startDynalite, type DynaliteAnswer, type EmbeddedDynalite, embeddedDynaliteAt } from '../scripts/emulator/dynamo.js';
import { createConnectionsTable, dynamoClient } from './support/dynalite.js';

let dynalite: EmbeddedDynalite;
let tableName: string;

beforeAll(async () => {
  dynalite = await startDynalite();
  const client = dynamoClient(dynalite.endpoint);
  ({ tableName } = await createConnectionsTable(client));
  client.destroy();
});
afterAll(async () => {
  await dynalite?.stop();
});

/** Headers as an SDK client sends them: dynalite reads the target, the content type and that a SigV4 Authorization is there. */
function headersFor(operation: string): Record<string, string> {
  return {
    'content-type': 'application/x-amz-json-1.0',
    'x-amz-target': `DynamoDB_20120810.${operation}`,
    'x-amz-date': '20261201T000000Z',
    authorization: 'AWS4-HMAC-SHA256 Credential=local/20261201/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date, Signature=00',
  };
}

function overHttp(headers: Record<string, string>, body: string): Promise<DynaliteAnswer> {
  return new Promise((resolve, reject) => {
    const outgoing = request(dynalite.endpoint, { method: 'POST', headers: { ...headers, 'content-length': Buffer.byteLength(body) } }, (answer) => {
      const chunks: Buffer[] = [];
      answer.on('data', (chunk: Buffer) => chunks.push(chunk));
      answer.on('end', () => resolve({ status: answer.statusCode!, headers: answer.headers as Record<string, string>, body: Buffer.concat(chunks) }));
    });
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}

/** What must agree: every header dynalite sets but its random request id, and the body. */
function comparable(answer: DynaliteAnswer) {
  return { status: answer.status, crc32: answer.headers['x-amz-crc32'], contentType: answer.headers['content-type'], length: answer.headers['content-length'], body: answer.body.toString('utf8') };
}

it('answers a call as it answers the same request over HTTP, errors included', async () => {
  const item = (id: string) => ({ pk: { S: `conn#${id}` }, room: { S: 'lobby' }, connectionId: { S: id } });
  const cases: Array<[string, unknown]> = [
    ['PutItem', { TableName: tableName, Item: item('a') }],
    ['GetItem', { TableName: tableName, Key: { pk: { S: 'conn#a' } }, ConsistentRead: true }],
    // A failed condition, both times against the item written above.
    ['PutItem', { TableName: tableName, Item: item('a'), ConditionExpression: 'attribute_not_exists(pk)' }],
    ['UpdateItem', { TableName: tableName, Key: { pk: { S: 'conn#a' } }, UpdateExpression: 'SET greeted = :t', ExpressionAttributeValues: { ':t': { BOOL: true } }, ReturnValues: 'ALL_NEW' }],
    // An expression that does not parse, and one naming a value it does not define.
    ['UpdateItem', { TableName: tableName, Key: { pk: { S: 'conn#a' } }, UpdateExpression: 'SET = :t' }],
    ['Query', { TableName: tableName, IndexName: 'byRoom', KeyConditionExpression: '#room = :room', ExpressionAttributeNames: { '#room': 'room' } }],
    ['Query', { TableName: tableName, IndexName: 'byRoom', KeyConditionExpression: '#room = :room', ExpressionAttributeNames: { '#room': 'room' }, ExpressionAttributeValues: { ':room': { S: 'lobby' } }, Select: 'COUNT' }],
    ['GetItem', { TableName: 'no-such-table', Key: { pk: { S: 'x' } } }],
    ['DescribeTable', { TableName: tableName }],
    ['NoSuchOperation', {}],
  ];
  for (const [operation, input] of cases) {
    const body = JSON.stringify(input);
    const viaHttp = await overHttp(headersFor(operation), body);
    const viaCall = await dynalite.call(headersFor(operation), Buffer.from(body));
    // DescribeTable's answer holds the table's live item count and size, equal here as nothing was written in between.
    expect(comparable(viaCall), operation).toEqual(comparable(viaHttp));
  }
  const malformed = '{"TableName":';
  expect(comparable(await dynalite.call(headersFor('GetItem'), Buffer.from(malformed)))).toEqual(comparable(await overHttp(headersFor('GetItem'), malformed)));
  const unsigned = { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'DynamoDB_20120810.ListTables' };
  const refused = await dynalite.call(unsigned, Buffer.from('{}'));
  expect(refused.status).toBe(400);
  expect(comparable(refused)).toEqual(comparable(await overHttp(unsigned, '{}')));
});

it('reads a body that is a view into a larger buffer as just that view', async () => {
  const body = JSON.stringify({ TableName: tableName, Key: { pk: { S: 'conn#a' } }, ConsistentRead: true });
  // As a small Buffer usually is: a slice of Node's shared pool, with other bytes on both sides.
  const pool = Buffer.from(`garbage${body}trailing-garbage`);
  const view = pool.subarray(7, 7 + body.length);
  const answer = await dynalite.call(headersFor('GetItem'), view);
  expect(answer.status).toBe(200);
  expect(JSON.parse(answer.body.toString('utf8')).Item.connectionId).toEqual({ S: 'a' });
});

it('counts each call on the request channel by its operation', async () => {
  const seen: string[] = [];
  const listener = (message: unknown) => void seen.push((message as { operation: string }).operation);
  subscribe(DYNALITE_REQUEST_CHANNEL, listener);
  try {
    await dynalite.call(headersFor('GetItem'), Buffer.from(JSON.stringify({ TableName: tableName, Key: { pk: { S: 'conn#a' } } })));
    await dynalite.call(headersFor('DescribeTable'), Buffer.from(JSON.stringify({ TableName: tableName })));
  } finally {
    unsubscribe(DYNALITE_REQUEST_CHANNEL, listener);
  }
  expect(seen).toEqual(['GetItem', 'DescribeTable']);
});

it('finishes the calls in flight when stopped, refuses later ones, and is no longer found by its endpoint', async () => {
  const own = await startDynalite();
  const client = dynamoClient(own.endpoint);
  const { tableName: table } = await createConnectionsTable(client);
  client.destroy();
  expect(embeddedDynaliteAt(own.endpoint)).toBe(own);
  const puts = Array.from({ length: 100 }, (_, i) => own.call(headersFor('PutItem'), Buffer.from(JSON.stringify({ TableName: table, Item: { pk: { S: `conn#p${i}` } } }))));
  const stopped = own.stop();
  await expect(own.call(headersFor('DescribeTable'), Buffer.from(JSON.stringify({ TableName: table })))).rejects.toThrow(/stopping/);
  const answers = await Promise.all(puts);
  expect(answers.map((answer) => answer.status)).toEqual(answers.map(() => 200));
  await stopped;
  expect(embeddedDynaliteAt(own.endpoint)).toBeUndefined();
});
