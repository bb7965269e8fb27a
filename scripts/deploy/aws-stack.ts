/**
 * CloudFormation stack helpers shared by deploy and remove: find a stack, and
 * follow an operation to its end, printing each stack event as it arrives.
 */
import {
  DescribeStackEventsCommand,
  DescribeStacksCommand,
  type Stack,
  type StackEvent,
} from '@aws-sdk/client-cloudformation';
import { awsErrorName, explainAwsError, type AwsTarget } from './aws-target.js';

export interface Reporter {
  say(line: string): void;
  /** Pause between polls; tests pass one that resolves at once. */
  pause(ms: number): Promise<void>;
  pollIntervalMs: number;
}

/** Runs one SDK call and turns any failure into a one-line CloudsocketError. */
export async function call<T>(target: AwsTarget, label: string, send: () => Promise<T>): Promise<T> {
  try {
    return await send();
  } catch (error) {
    throw explainAwsError(label, target.region, error);
  }
}

/** Like `call`, but an error that `expected` accepts resolves to undefined. */
export async function probe<T>(target: AwsTarget, label: string, send: () => Promise<T>, expected: (error: unknown) => boolean): Promise<T | undefined> {
  try {
    return await send();
  } catch (error) {
    if (expected(error)) return undefined;
    throw explainAwsError(label, target.region, error);
  }
}

function isMissingStack(error: unknown): boolean {
  return awsErrorName(error) === 'ValidationError' && /does not exist/.test(String((error as Error).message));
}

export async function findStack(target: AwsTarget, stackName: string): Promise<Stack | undefined> {
  const found = await probe(
    target,
    'CloudFormation DescribeStacks',
    () => target.cloudformation.send(new DescribeStacksCommand({ StackName: stackName })),
    isMissingStack,
  );
  return found?.Stacks?.[0];
}

export function parameterOf(stack: Stack | undefined, key: string): string | undefined {
  return stack?.Parameters?.find((p) => p.ParameterKey === key)?.ParameterValue;
}

export function outputOf(stack: Stack | undefined, key: string): string | undefined {
  return stack?.Outputs?.find((o) => o.OutputKey === key)?.OutputValue;
}

/** The newest event id now, so that the watch prints only what happens from here on. */
export async function latestEventId(target: AwsTarget, stackName: string): Promise<string | undefined> {
  const page = await probe(
    target,
    'CloudFormation DescribeStackEvents',
    () => target.cloudformation.send(new DescribeStackEventsCommand({ StackName: stackName })),
    isMissingStack,
  );
  return page?.StackEvents?.[0]?.EventId;
}

function clock(date: Date | undefined): string {
  return (date ?? new Date()).toISOString().slice(11, 19);
}

export function formatEvent(event: StackEvent): string {
  const reason = event.ResourceStatusReason ? `  ${event.ResourceStatusReason}` : '';
  return `  ${clock(event.Timestamp)}  ${event.ResourceStatus ?? ''}  ${event.LogicalResourceId ?? ''} (${event.ResourceType ?? ''})${reason}`;
}

export interface WatchResult {
  stack: Stack | undefined;
  /** Events of this operation whose status ends in _FAILED, oldest first. */
  failures: StackEvent[];
}

/**
 * Polls until the stack leaves every *_IN_PROGRESS state. Each round reads the
 * status first and the events second, so the events of a finished operation
 * are all printed before the watch returns.
 */
export async function watchStack(target: AwsTarget, stackId: string, since: string | undefined, reporter: Reporter): Promise<WatchResult> {
  const seen = new Set<string>();
  const failures: StackEvent[] = [];
  for (;;) {
    const described = await call(target, 'CloudFormation DescribeStacks', () =>
      target.cloudformation.send(new DescribeStacksCommand({ StackName: stackId })),
    );
    const stack = described.Stacks?.[0];
    const page = await call(target, 'CloudFormation DescribeStackEvents', () =>
      target.cloudformation.send(new DescribeStackEventsCommand({ StackName: stackId })),
    );
    const fresh: StackEvent[] = [];
    for (const event of page.StackEvents ?? []) {
      if (event.EventId === since) break;
      if (event.EventId && !seen.has(event.EventId)) fresh.push(event);
    }
    for (const event of fresh.reverse()) {
      seen.add(event.EventId!);
      reporter.say(formatEvent(event));
      if (event.ResourceStatus?.endsWith('_FAILED')) failures.push(event);
    }
    const status = stack?.StackStatus ?? 'DELETE_COMPLETE';
    if (!status.endsWith('_IN_PROGRESS')) return { stack, failures };
    await reporter.pause(reporter.pollIntervalMs);
  }
}

export function printFailures(failures: StackEvent[], say: (line: string) => void): void {
  const reasons = failures.filter((e) => e.ResourceStatusReason && !/cancelled/i.test(e.ResourceStatusReason));
  const shown = reasons.length > 0 ? reasons : failures;
  if (shown.length === 0) return;
  say('Failed resources:');
  for (const event of shown) {
    say(`  ${event.LogicalResourceId ?? '?'} (${event.ResourceType ?? '?'}): ${event.ResourceStatusReason ?? 'no reason given'}`);
  }
}
