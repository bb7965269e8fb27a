/**
 * Room state on the AWS target: one item per room in the registry's table,
 * which every Lambda function of the stack reaches.
 *
 *   state#{room}   `keyCount` (N), and one attribute per key, `v:{key}`:
 *                  a safe integer as a number (N), so UpdateItem can add to
 *                  it in place; any other value as its JSON text (S).
 *
 * The item has no `room` or `clientId`, so neither index sees it; the `v:`
 * prefix keeps a key from ever being one of those names. Every write sets
 * its `expiresAt` (the table's TTL attribute) to ROOM_STATE_TTL from now, so
 * DynamoDB deletes the state of a room nobody writes to any more. TTL
 * deletes late (within days), so an item past its `expiresAt` is read as
 * empty, and a write to it first deletes it (conditional on it being
 * expired still). STATE_LIMITS keep the whole item under DynamoDB's 400 KB.
 *
 * Requests per operation (the common case first):
 *   get, list   1 GetItem (strongly consistent, so a write from another
 *               function is seen at once).
 *   set         1 UpdateItem for a key that exists; a new key: 1 more
 *               (the first write is conditional on the key existing, the
 *               second on it not existing and the room not being full, and
 *               that one also counts the key).
 *   increment   the same: `v = v + :by` on a whole number within range, else
 *               the new-key write; both refused, 1 GetItem tells why (or that
 *               the key appeared meanwhile, and it starts over).
 *   delete      1 UpdateItem (REMOVE, conditional on the key existing).
 * Every write is a single-item conditional UpdateItem, which dynalite has too.
 */
import type { AttributeValue, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetItemCommand, UpdateItemCommand, type UpdateItemCommandInput } from '@aws-sdk/client-dynamodb';
import { DeleteItemCommand, type DeleteItemCommandInput } from '@aws-sdk/client-dynamodb';
import { CloudsocketError, StateFullError } from '../shared/errors.js';
import { DEFAULT_STATE_TTL_MS, incremented, isSafeIntegerText, STATE_LIMITS, type StateStore } from '../shared/room-state.js';
import { PARTITION_KEY, TTL_ATTRIBUTE } from './dynamodb-registry.js';

const KEY_COUNT = 'keyCount';
const VALUE_PREFIX = 'v:';

/** Writers racing on one key settle in a round or two; this many means something else is wrong. */
const MAX_ATTEMPTS = 10;

/** A key kept changing between the conditional writes of one operation more often than is plausible. */
export class StateContentionError extends CloudsocketError {
  constructor(room: string, key: string) {
    super('state_contention', `state "${key}" of room ${room} is being changed concurrently; gave up`);
  }
}

export interface DynamoDbStateStoreOptions {
  client: DynamoDBClient;
  /** The registry's table (CONNECTIONS_TABLE). */
  tableName: string;
  /** A room's state is forgotten this long after its last write; 0 keeps it. Default a day (ROOM_STATE_TTL). */
  ttlMs?: number;
  /** Epoch ms. */
  clock?: () => number;
}

/** In a condition: the item is not past its expiry (an item written while state was kept for good has none). */
const LIVE = '(attribute_not_exists(#exp) OR #exp > :now)';

type Item = Record<string, AttributeValue>;

export class DynamoDbStateStore implements StateStore {
  private readonly client: DynamoDBClient;
  private readonly tableName: string;
  private readonly ttlMs: number;
  private readonly clock: () => number;

  constructor(options: DynamoDbStateStoreOptions) {
    this.client = options.client;
    this.tableName = options.tableName;
    this.ttlMs = options.ttlMs ?? DEFAULT_STATE_TTL_MS;
    this.clock = options.clock ?? Date.now;
  }

  async get(room: string, key: string): Promise<string | undefined> {
    const item = await this.read(room, [VALUE_PREFIX + key]);
    return jsonOf(item?.[VALUE_PREFIX + key]);
  }

  async list(room: string): Promise<Array<[string, string]>> {
    const item = (await this.read(room)) ?? {};
    const entries: Array<[string, string]> = [];
    for (const [name, value] of Object.entries(item)) {
      const json = name.startsWith(VALUE_PREFIX) ? jsonOf(value) : undefined;
      if (json !== undefined) entries.push([name.slice(VALUE_PREFIX.length), json]);
    }
    return entries;
  }

  async set(room: string, key: string, json: string): Promise<void> {
    const value: AttributeValue = isSafeIntegerText(json) ? { N: json } : { S: json };
    await this.writeKey(room, key, {
      replace: { UpdateExpression: 'SET #v = :value', ConditionExpression: 'attribute_exists(#v)', values: { ':value': value } },
      add: value,
    });
  }

  async increment(room: string, key: string, by: number): Promise<number> {
    // The stored number must stay a safe integer after adding `by`: a condition on its value before the write.
    const [low, high] = by >= 0 ? [-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER - by] : [-Number.MAX_SAFE_INTEGER - by, Number.MAX_SAFE_INTEGER];
    const attributes = await this.writeKey(room, key, {
      replace: {
        UpdateExpression: 'SET #v = #v + :by',
        ConditionExpression: 'attribute_type(#v, :number) AND #v BETWEEN :low AND :high',
        values: { ':by': n(by), ':number': { S: 'N' }, ':low': n(low), ':high': n(high) },
      },
      add: n(by),
      // Only when the key exists and is refused: the reason is the stored value.
      explain: (stored) => incremented(key, stored, by),
    });
    return Number(attributes?.[VALUE_PREFIX + key]?.N);
  }

  async delete(room: string, key: string): Promise<boolean> {
    const removed = await this.conditionally(
      this.update(room, key, { UpdateExpression: 'REMOVE #v SET #count = #count - :one', ConditionExpression: 'attribute_exists(#v)', values: { ':one': n(1) } }),
    );
    return removed !== undefined;
  }

  /**
   * Writes an existing key in place, else adds it as a new one, counting it
   * within the limit. Between the two another writer may add or delete the
   * key, so both are conditional and a double refusal is read and tried again.
   */
  private async writeKey(
    room: string,
    key: string,
    write: { replace: UpdateParts; add: AttributeValue; explain?: (stored: string) => unknown },
  ): Promise<Item | undefined> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const replaced = await this.conditionally(this.update(room, key, write.replace));
      if (replaced) return replaced;
      const added = await this.conditionally(
        this.update(room, key, {
          UpdateExpression: 'SET #v = :value, #count = if_not_exists(#count, :zero) + :one',
          ConditionExpression: 'attribute_not_exists(#v) AND (attribute_not_exists(#count) OR #count < :max)',
          values: { ':value': write.add, ':zero': n(0), ':one': n(1), ':max': n(STATE_LIMITS.maxKeysPerRoom) },
        }),
      );
      if (added) return added;
      const item = await this.readRaw(room, [VALUE_PREFIX + key, KEY_COUNT, TTL_ATTRIBUTE]);
      if (item && this.expired(item)) {
        // Past its expiry and not yet deleted by TTL: gone for good now, so this write starts the room afresh.
        await this.deleteIfExpired(room);
        continue;
      }
      const stored = jsonOf(item?.[VALUE_PREFIX + key]);
      if (stored !== undefined) {
        // It exists, so the first write was refused for its value, or it appeared after that write.
        write.explain?.(stored);
        continue;
      }
      if (Number(item?.[KEY_COUNT]?.N ?? 0) >= STATE_LIMITS.maxKeysPerRoom) throw new StateFullError(STATE_LIMITS.maxKeysPerRoom);
    }
    throw new StateContentionError(room, key);
  }

  private update(room: string, key: string, parts: UpdateParts): Promise<Item | undefined> {
    const nowSeconds = Math.floor(this.clock() / 1000);
    // Every write renews the room's expiry; REMOVE-only writes gain a SET clause for it.
    const renewal = this.ttlMs > 0 ? `#exp = :exp` : undefined;
    let expression = parts.UpdateExpression;
    if (renewal) expression = expression.includes('SET ') ? expression.replace('SET ', `SET ${renewal}, `) : `${expression} SET ${renewal}`;
    const values: Record<string, AttributeValue> = { ...parts.values, ':now': n(nowSeconds) };
    if (renewal) values[':exp'] = n(nowSeconds + Math.ceil(this.ttlMs / 1000));
    const input: UpdateItemCommandInput = {
      TableName: this.tableName,
      Key: { [PARTITION_KEY]: { S: itemKey(room) } },
      UpdateExpression: expression,
      // Every write is to a live item: one past its expiry reads as empty, so it must not be written as if it held anything.
      ConditionExpression: `(${parts.ConditionExpression}) AND ${LIVE}`,
      ExpressionAttributeValues: values,
      ReturnValues: 'UPDATED_NEW',
    };
    // DynamoDB refuses names an expression does not use.
    const names: Record<string, string> = { '#v': VALUE_PREFIX + key, '#exp': TTL_ATTRIBUTE };
    if (`${parts.UpdateExpression} ${parts.ConditionExpression}`.includes('#count')) names['#count'] = KEY_COUNT;
    input.ExpressionAttributeNames = names;
    // UPDATED_NEW of a REMOVE is nothing; an empty object still says the write happened.
    return this.client.send(new UpdateItemCommand(input)).then((output) => output.Attributes ?? {});
  }

  /** The room's item as a reader sees it: none once past its expiry. */
  private async read(room: string, names?: string[]): Promise<Item | undefined> {
    const item = await this.readRaw(room, names && [...names, TTL_ATTRIBUTE]);
    return item && !this.expired(item) ? item : undefined;
  }

  private expired(item: Item): boolean {
    const expiresAt = item[TTL_ATTRIBUTE]?.N;
    return expiresAt !== undefined && Number(expiresAt) <= Math.floor(this.clock() / 1000);
  }

  /** Deletes the room's item if it is still past its expiry (a write may have renewed it meanwhile). */
  private async deleteIfExpired(room: string): Promise<void> {
    const input: DeleteItemCommandInput = {
      TableName: this.tableName,
      Key: { [PARTITION_KEY]: { S: itemKey(room) } },
      ConditionExpression: '#exp <= :now',
      ExpressionAttributeNames: { '#exp': TTL_ATTRIBUTE },
      ExpressionAttributeValues: { ':now': n(Math.floor(this.clock() / 1000)) },
    };
    await this.conditionally(this.client.send(new DeleteItemCommand(input)).then(() => ({})));
  }

  private async readRaw(room: string, names?: string[]): Promise<Item | undefined> {
    const { Item } = await this.client.send(
      new GetItemCommand({
        TableName: this.tableName,
        Key: { [PARTITION_KEY]: { S: itemKey(room) } },
        ConsistentRead: true,
        ...(names ? { ProjectionExpression: names.map((_, i) => `#n${i}`).join(', '), ExpressionAttributeNames: Object.fromEntries(names.map((name, i) => [`#n${i}`, name])) } : {}),
      }),
    );
    return Item;
  }

  /** The write's new attributes, or undefined when its condition failed. */
  private async conditionally(write: Promise<Item | undefined>): Promise<Item | undefined> {
    try {
      return await write;
    } catch (error) {
      if ((error as { name?: string }).name === 'ConditionalCheckFailedException') return undefined;
      throw error;
    }
  }
}

interface UpdateParts {
  UpdateExpression: string;
  ConditionExpression: string;
  values: Record<string, AttributeValue>;
}

function itemKey(room: string): string {
  return `state#${room}`;
}

/** The JSON text a stored attribute holds: numbers are their own JSON. */
function jsonOf(value: AttributeValue | undefined): string | undefined {
  return value?.N ?? value?.S;
}

function n(value: number): AttributeValue {
  return { N: String(value) };
}
