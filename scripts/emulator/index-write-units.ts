/**
 * The write units DynamoDB charges a write, the indexes' share included,
 * from the item as it was and as it is after the write. The local store
 * (dynalite) reports only the table's share in ConsumedCapacity, so the
 * indexes' share is counted here (for the cost meter, and for
 * test/aws.index-writes.test.ts) by DynamoDB's rules for global secondary
 * indexes (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.Writes):
 * an item that enters or leaves an index costs that index one write; one
 * whose index key changes, two (delete and put); one that stays, one write
 * when a projected attribute changed and none when nothing it projects did;
 * an item in the index neither before nor after, nothing. Each write is
 * counted in 1 KB units of the index entry.
 */
import { createRequire } from 'node:module';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { isDeepStrictEqual } from 'node:util';
import { CONNECTIONS_TABLE_ID, type Template } from '../aws-template.js';

type Item = Record<string, AttributeValue>;

/** The item size DynamoDB bills by, as the local store computes it. */
const { itemSize } = createRequire(import.meta.url)('dynalite/db/index.js') as { itemSize(item: Item): number };

export interface IndexShape {
  name: string;
  keys: string[];
  /** Every attribute an entry holds (keys included), or ALL. */
  projected: Set<string> | 'ALL';
}

/** A table's definition as CreateTable takes it, as far as its indexes go. */
export interface IndexedTableDefinition {
  KeySchema?: Array<{ AttributeName?: string }>;
  GlobalSecondaryIndexes?: Array<{ IndexName?: string; KeySchema?: Array<{ AttributeName?: string }>; Projection?: { ProjectionType?: string; NonKeyAttributes?: string[] } }>;
}

/** The template table's global secondary indexes; `projectAll` as if each projected ALL. */
export function indexShapes(template: Template, projectAll = false, logicalId = CONNECTIONS_TABLE_ID): IndexShape[] {
  return indexShapesOf(template.Resources[logicalId]!.Properties as IndexedTableDefinition, projectAll);
}

/** A table definition's global secondary indexes; `projectAll` as if each projected ALL. */
export function indexShapesOf(props: IndexedTableDefinition, projectAll = false): IndexShape[] {
  const tableKeys = (props.KeySchema ?? []).map((key) => key.AttributeName!);
  return (props.GlobalSecondaryIndexes ?? []).map((index) => {
    const keys = (index.KeySchema ?? []).map((key) => key.AttributeName!);
    const all = projectAll || index.Projection?.ProjectionType === 'ALL';
    return { name: index.IndexName!, keys, projected: all ? 'ALL' : new Set([...tableKeys, ...keys, ...(index.Projection?.NonKeyAttributes ?? [])]) };
  });
}

const units = (item: Item | undefined) => Math.max(1, Math.ceil((item ? itemSize(item) : 0) / 1024));

function entryOf(item: Item | undefined, index: IndexShape): Item | undefined {
  if (!item || !index.keys.every((key) => item[key] !== undefined)) return undefined;
  if (index.projected === 'ALL') return item;
  const projected = index.projected;
  return Object.fromEntries(Object.entries(item).filter(([name]) => projected.has(name)));
}

/** What one index charges a write that turned `before` into `after` (undefined: no item). */
export function indexWriteUnits(before: Item | undefined, after: Item | undefined, index: IndexShape): number {
  const old = entryOf(before, index);
  const next = entryOf(after, index);
  if (!old && !next) return 0;
  if (!old) return units(next);
  if (!next) return units(old);
  if (index.keys.some((key) => !isDeepStrictEqual(old[key], next[key]))) return units(old) + units(next);
  return isDeepStrictEqual(old, next) ? 0 : units(next);
}

/** The table's share: 1 KB units of the larger of the item before and after, at least one (a failed condition costs it too). */
export function tableWriteUnits(before: Item | undefined, after: Item | undefined): number {
  return Math.max(units(before), units(after));
}
