/**
 * Reads infra/aws/template.yaml, the one description of the AWS stack. The
 * tests, the emulator and the deploy all take the table, routes and functions
 * from here, so what runs locally cannot drift from what is deployed.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import { parse, type ScalarTag, type CollectionTag, type YAMLMap, type YAMLSeq } from 'yaml';
import { CloudsocketError } from '../shared/errors.js';

export const DEFAULT_TEMPLATE_PATH = fileURLToPath(new URL('../infra/aws/template.yaml', import.meta.url));

/** A template the tools cannot use; the message names the template and what is missing. */
export class TemplateError extends CloudsocketError {
  constructor(message: string) {
    super('invalid_template', message);
  }
}

export interface TemplateResource {
  Type: string;
  Properties?: Record<string, unknown>;
  DependsOn?: string | string[];
  [attribute: string]: unknown;
}

export interface Template {
  AWSTemplateFormatVersion?: string;
  Description?: string;
  Parameters?: Record<string, { Type: string; Default?: unknown; [key: string]: unknown }>;
  Conditions?: Record<string, unknown>;
  Resources: Record<string, TemplateResource>;
  Outputs?: Record<string, { Value: unknown; [key: string]: unknown }>;
}

/** The logical id of the connections table; the emulator and deploy rely on it. */
export const CONNECTIONS_TABLE_ID = 'ConnectionsTable';

/**
 * CloudFormation's short-form intrinsics (`!Ref X`) become their long form
 * (`{ Ref: X }`), which is what the spec, CloudFormation and our resolver see.
 */
const INTRINSICS: Record<string, string> = {
  Ref: 'Ref',
  Condition: 'Condition',
  GetAtt: 'Fn::GetAtt',
  Sub: 'Fn::Sub',
  Join: 'Fn::Join',
  Select: 'Fn::Select',
  Split: 'Fn::Split',
  If: 'Fn::If',
  Equals: 'Fn::Equals',
  Not: 'Fn::Not',
  And: 'Fn::And',
  Or: 'Fn::Or',
  FindInMap: 'Fn::FindInMap',
  Base64: 'Fn::Base64',
  Cidr: 'Fn::Cidr',
  ImportValue: 'Fn::ImportValue',
  GetAZs: 'Fn::GetAZs',
  Transform: 'Fn::Transform',
};

function intrinsicTags(): Array<ScalarTag | CollectionTag> {
  const tags: Array<ScalarTag | CollectionTag> = [];
  for (const [short, long] of Object.entries(INTRINSICS)) {
    tags.push({
      tag: `!${short}`,
      resolve: (value: string) =>
        // `!GetAtt Res.Attr` is the one short form whose scalar means a list.
        long === 'Fn::GetAtt' ? { [long]: splitOnce(value, '.') } : { [long]: value },
    });
    tags.push({ tag: `!${short}`, collection: 'seq', resolve: (seq: YAMLSeq) => ({ [long]: seq.toJSON() }) } as CollectionTag);
    tags.push({ tag: `!${short}`, collection: 'map', resolve: (map: YAMLMap) => ({ [long]: map.toJSON() }) } as CollectionTag);
  }
  return tags;
}

function splitOnce(value: string, separator: string): string[] {
  const at = value.indexOf(separator);
  return at < 0 ? [value] : [value.slice(0, at), value.slice(at + 1)];
}

export function parseTemplate(text: string, source = 'template'): Template {
  let parsed: unknown;
  try {
    parsed = parse(text, { customTags: intrinsicTags() });
  } catch (error) {
    throw new TemplateError(`${source}: not valid YAML: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (!isObject(parsed) || !isObject(parsed.Resources)) throw new TemplateError(`${source}: has no Resources section`);
  return parsed as unknown as Template;
}

export async function loadTemplate(path = DEFAULT_TEMPLATE_PATH): Promise<Template> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new TemplateError(`cannot read ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
  return parseTemplate(text, path);
}

export function resource(template: Template, logicalId: string, type?: string): TemplateResource {
  const found = template.Resources[logicalId];
  if (!found) throw new TemplateError(`the template has no resource ${logicalId}`);
  if (type !== undefined && found.Type !== type) throw new TemplateError(`${logicalId} is ${found.Type}, expected ${type}`);
  return found;
}

/**
 * The ConnectionsTable as a CreateTable request, for dynalite or a local
 * DynamoDB. Only the parts a local table can honour; billing, TTL and tags are
 * the cloud's business (see `ttlAttribute`).
 */
export function tableDefinition(template: Template, tableName: string, logicalId = CONNECTIONS_TABLE_ID): CreateTableCommandInput {
  const table = resource(template, logicalId);
  const props = (table.Properties ?? {}) as Record<string, any>;
  if (table.Type === 'AWS::Serverless::SimpleTable') {
    // SAM's SimpleTable: one string (or given) hash key, named `id` unless PrimaryKey says otherwise.
    const key = (props.PrimaryKey ?? { Name: 'id', Type: 'String' }) as { Name: string; Type: string };
    const attributeType = ({ String: 'S', Number: 'N', Binary: 'B' } as Record<string, 'S' | 'N' | 'B'>)[key.Type] ?? 'S';
    return {
      TableName: tableName,
      KeySchema: [{ AttributeName: key.Name, KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: key.Name, AttributeType: attributeType }],
      BillingMode: 'PAY_PER_REQUEST',
    };
  }
  if (table.Type !== 'AWS::DynamoDB::Table') throw new TemplateError(`${logicalId} is ${table.Type}, expected AWS::DynamoDB::Table`);
  if (!Array.isArray(props.KeySchema) || !Array.isArray(props.AttributeDefinitions)) {
    throw new TemplateError(`${logicalId} needs KeySchema and AttributeDefinitions`);
  }
  const definition: CreateTableCommandInput = {
    TableName: tableName,
    KeySchema: props.KeySchema,
    AttributeDefinitions: props.AttributeDefinitions,
    BillingMode: props.BillingMode ?? 'PAY_PER_REQUEST',
  };
  if (Array.isArray(props.GlobalSecondaryIndexes)) {
    definition.GlobalSecondaryIndexes = props.GlobalSecondaryIndexes.map((index: Record<string, any>) => ({
      IndexName: index.IndexName,
      KeySchema: index.KeySchema,
      Projection: index.Projection,
    }));
  }
  return definition;
}

/** The attribute DynamoDB's TTL deletes items by, or undefined when TTL is off. */
export function ttlAttribute(template: Template, logicalId = CONNECTIONS_TABLE_ID): string | undefined {
  const props = (resource(template, logicalId).Properties ?? {}) as Record<string, any>;
  const spec = props.TimeToLiveSpecification;
  return spec && spec.Enabled === true && typeof spec.AttributeName === 'string' ? spec.AttributeName : undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
