/**
 * DynamoDB's Time to Live, which dynalite lacks: items whose TTL attribute
 * (epoch seconds) is in the past are deleted. The cloud does this within a
 * couple of days, without `$disconnect` or any other event; so do we, only
 * sooner. This is a Scan, but of the emulator's own making, off every request path.
 */
import { DeleteItemCommand, DescribeTableCommand, ScanCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { Logger } from '../../shared/log.js';

export class TtlSweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;

  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
    private readonly attribute: string,
    private readonly logger: Logger,
  ) {}

  start(intervalMs: number): void {
    this.timer = setInterval(() => void this.sweep(), intervalMs);
    this.timer.unref();
  }

  /** One pass; resolves to the number of items deleted. Overlapping calls share the pass in progress. */
  sweep(now = Date.now()): Promise<number> {
    this.running ??= this.pass(Math.floor(now / 1000))
      .catch((error) => {
        this.logger.warn('ttl_sweep_failed', { table: this.tableName, error });
        return 0;
      })
      .finally(() => (this.running = undefined));
    return this.running;
  }

  private async pass(nowSeconds: number): Promise<number> {
    const { Table } = await this.client.send(new DescribeTableCommand({ TableName: this.tableName }));
    const keyNames = (Table?.KeySchema ?? []).map((key) => key.AttributeName!);
    let deleted = 0;
    let startKey: Record<string, AttributeValue> | undefined;
    do {
      const page = await this.client.send(
        new ScanCommand({
          TableName: this.tableName,
          FilterExpression: '#ttl < :now',
          ExpressionAttributeNames: { '#ttl': this.attribute },
          ExpressionAttributeValues: { ':now': { N: String(nowSeconds) } },
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of page.Items ?? []) {
        const key = Object.fromEntries(keyNames.map((name) => [name, item[name]!]));
        try {
          // Only if still expired: a touch may have pushed the TTL forward since the Scan.
          await this.client.send(
            new DeleteItemCommand({
              TableName: this.tableName,
              Key: key,
              ConditionExpression: '#ttl < :now',
              ExpressionAttributeNames: { '#ttl': this.attribute },
              ExpressionAttributeValues: { ':now': { N: String(nowSeconds) } },
            }),
          );
          deleted++;
        } catch (error) {
          if ((error as Error).name !== 'ConditionalCheckFailedException') throw error;
        }
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    if (deleted > 0) this.logger.info('ttl_expired', { table: this.tableName, deleted });
    return deleted;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
