/**
 * What a Query on a global secondary index reads, against what the index
 * projects: a Query on an index returns only the attributes it projects, and
 * a filter or projection naming any other attribute sees it missing.
 */
import type { QueryCommandInput } from '@aws-sdk/client-dynamodb';
import { CONNECTIONS_TABLE_ID, type Template } from '../../scripts/aws-template.js';

/** Every attribute each index of the template's table holds: its keys, the table's keys and, unless ALL, its NonKeyAttributes. */
export function projectedAttributes(template: Template, logicalId = CONNECTIONS_TABLE_ID): Map<string, Set<string> | 'ALL'> {
  const props = template.Resources[logicalId]!.Properties as {
    KeySchema: Array<{ AttributeName: string }>;
    GlobalSecondaryIndexes?: Array<{ IndexName: string; KeySchema: Array<{ AttributeName: string }>; Projection: { ProjectionType: string; NonKeyAttributes?: string[] } }>;
  };
  const tableKeys = props.KeySchema.map((key) => key.AttributeName);
  return new Map(
    (props.GlobalSecondaryIndexes ?? []).map((index) => [
      index.IndexName,
      index.Projection.ProjectionType === 'ALL'
        ? 'ALL'
        : new Set([...tableKeys, ...index.KeySchema.map((key) => key.AttributeName), ...(index.Projection.NonKeyAttributes ?? [])]),
    ]),
  );
}

/** Words of an expression that are not attribute names. */
const EXPRESSION_WORDS = new Set(['AND', 'OR', 'NOT', 'BETWEEN', 'IN', 'attribute_exists', 'attribute_not_exists', 'attribute_type', 'begins_with', 'contains', 'size']);

/** The top-level attributes an expression names, `#placeholders` resolved. */
export function attributesOf(expression: string | undefined, names: Record<string, string> = {}): string[] {
  if (!expression) return [];
  const found: string[] = [];
  // A path's first element is the attribute (`a.b[0]` reads `a`); `:values` are not names.
  for (const match of expression.matchAll(/(?<![:\w#.\]])(#?[A-Za-z_][\w]*)/g)) {
    const word = match[1]!;
    if (EXPRESSION_WORDS.has(word)) continue;
    found.push(word.startsWith('#') ? (names[word] ?? word) : word);
  }
  return found;
}

/**
 * What is wrong with one Query against the indexes' projections: the
 * attributes it names that its index lacks, or, on an index that does not
 * project ALL, that it asks for whole items (no ProjectionExpression, not a
 * COUNT), which the caller would read as if they were the table's.
 */
export function projectionProblems(query: QueryCommandInput, projections: Map<string, Set<string> | 'ALL'>): string[] {
  if (!query.IndexName) return [];
  const projected = projections.get(query.IndexName);
  if (projected === undefined) return [`${query.IndexName}: no such index in the template`];
  if (projected === 'ALL') return [];
  const names = query.ExpressionAttributeNames;
  const problems: string[] = [];
  if (!query.ProjectionExpression && query.Select !== 'COUNT') problems.push(`${query.IndexName}: reads whole items, but the index projects only ${[...projected].sort().join(', ')}`);
  for (const [part, expression] of [['ProjectionExpression', query.ProjectionExpression], ['KeyConditionExpression', query.KeyConditionExpression], ['FilterExpression', query.FilterExpression]] as const) {
    for (const attribute of attributesOf(expression, names)) {
      if (!projected.has(attribute)) problems.push(`${query.IndexName}: ${part} reads ${attribute}, which the index does not project`);
    }
  }
  return problems;
}
