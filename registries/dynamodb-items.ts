/** Attribute values and conditional writes as the DynamoDB registry and room log both use them. */
import type { AttributeValue } from '@aws-sdk/client-dynamodb';

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
