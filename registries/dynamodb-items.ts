/** Attribute values, conditional writes and batch reads as the DynamoDB registry and room log both use them. */
import { BatchGetItemCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';

export type Item = Record<string, AttributeValue>;

export function s(value: string): AttributeValue {
  return { S: value };
}

export function n(value: number): AttributeValue {
  return { N: String(value) };
}

export function str(value: AttributeValue | undefined): string {
  return value?.S ?? '';
}

export function num(value: AttributeValue | undefined): number {
  return value?.N === undefined ? 0 : Number(value.N);
}

export function isConditionFailure(error: unknown): error is { name: string; Item?: Item } {
  // By name, not instanceof: a bundle may hold more than one copy of the SDK's classes.
  return (error as { name?: unknown } | null)?.name === 'ConditionalCheckFailedException';
}

/** Resolves false when the write's condition failed; other errors pass through. */
export async function conditionally(write: Promise<unknown>): Promise<boolean> {
  try {
    await write;
    return true;
  } catch (error) {
    if (isConditionFailure(error)) return false;
    throw error;
  }
}

/** BatchGetItem takes at most 100 keys. */
const BATCH_KEYS = 100;

/** The items of `keys` that exist, in no particular order; BatchGetItem may leave keys unprocessed, which are asked for again. */
export async function batchGetItems(
  client: DynamoDBClient,
  tableName: string,
  keys: readonly Item[],
  consistentRead: boolean,
  projection?: { expression: string; names: Record<string, string> },
): Promise<Item[]> {
  const read = projection ? { ProjectionExpression: projection.expression, ExpressionAttributeNames: projection.names } : {};
  const found: Item[] = [];
  for (let offset = 0; offset < keys.length; offset += BATCH_KEYS) {
    let pending: Item[] = keys.slice(offset, offset + BATCH_KEYS);
    while (pending.length > 0) {
      const { Responses, UnprocessedKeys } = await client.send(
        new BatchGetItemCommand({ RequestItems: { [tableName]: { Keys: pending, ConsistentRead: consistentRead, ...read } } }),
      );
      found.push(...(Responses?.[tableName] ?? []));
      pending = (UnprocessedKeys?.[tableName]?.Keys ?? []) as Item[];
    }
  }
  return found;
}
