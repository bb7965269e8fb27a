/**
 * Checks a CloudFormation template against the CloudFormation resource
 * specification (the JSON AWS publishes, as shipped in @aws-cdk/cfnspec):
 * resource types, property names at every depth the spec describes,
 * required properties, and that every Ref/GetAtt/Sub names something real.
 */
import { createRequire } from 'node:module';
import type { Template } from '../../scripts/aws-template.js';

interface PropertySpec {
  PrimitiveType?: string;
  PrimitiveItemType?: string;
  Type?: string;
  ItemType?: string;
  Required?: boolean;
}

interface PropertyTypeSpec extends PropertySpec {
  Properties?: Record<string, PropertySpec>;
}

interface ResourceTypeSpec {
  Properties?: Record<string, PropertySpec>;
  Attributes?: Record<string, unknown>;
}

export interface CfnSpecification {
  ResourceSpecificationVersion: string;
  ResourceTypes: Record<string, ResourceTypeSpec>;
  PropertyTypes: Record<string, PropertyTypeSpec>;
}

export function loadSpecification(): CfnSpecification {
  return createRequire(import.meta.url)('@aws-cdk/cfnspec/spec/specification.json') as CfnSpecification;
}

const RESOURCE_ATTRIBUTES = new Set(['Type', 'Properties', 'DependsOn', 'Condition', 'Metadata', 'DeletionPolicy', 'UpdateReplacePolicy', 'CreationPolicy', 'UpdatePolicy']);
const PSEUDO_PARAMETERS = new Set(['AWS::AccountId', 'AWS::NotificationARNs', 'AWS::NoValue', 'AWS::Partition', 'AWS::Region', 'AWS::StackId', 'AWS::StackName', 'AWS::URLSuffix']);

function isIntrinsic(value: unknown): boolean {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  return keys.length === 1 && (keys[0] === 'Ref' || keys[0]!.startsWith('Fn::'));
}

function isScalar(value: unknown): boolean {
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean';
}

/** Every problem found, each naming its place in the template; [] when it conforms. */
export function validateTemplate(template: Template, spec: CfnSpecification): string[] {
  const problems: string[] = [];

  const checkValue = (value: unknown, property: PropertySpec, resourceType: string, path: string): void => {
    if (isIntrinsic(value)) return;
    if (property.PrimitiveType !== undefined) {
      if (property.PrimitiveType !== 'Json' && !isScalar(value)) problems.push(`${path}: expected a ${property.PrimitiveType}`);
      return;
    }
    if (property.Type === 'List' || property.Type === 'Map') {
      if (property.Type === 'List' && !Array.isArray(value)) return void problems.push(`${path}: expected a list`);
      if (property.Type === 'Map' && (typeof value !== 'object' || value === null || Array.isArray(value))) return void problems.push(`${path}: expected a map`);
      for (const [key, item] of Object.entries(value as object)) {
        const itemPath = `${path}[${key}]`;
        if (isIntrinsic(item)) continue;
        if (property.PrimitiveItemType !== undefined) {
          if (property.PrimitiveItemType !== 'Json' && !isScalar(item)) problems.push(`${itemPath}: expected a ${property.PrimitiveItemType}`);
        } else if (property.ItemType !== undefined) {
          checkTyped(item, property.ItemType, resourceType, itemPath);
        }
      }
      return;
    }
    if (property.Type !== undefined) checkTyped(value, property.Type, resourceType, path);
  };

  const checkTyped = (value: unknown, typeName: string, resourceType: string, path: string): void => {
    if (isIntrinsic(value)) return;
    const propertyType = spec.PropertyTypes[`${resourceType}.${typeName}`] ?? spec.PropertyTypes[typeName];
    if (!propertyType) return void problems.push(`${path}: the specification has no property type ${typeName}`);
    if (propertyType.Properties) checkProperties(value, propertyType.Properties, resourceType, path);
    else checkValue(value, propertyType, resourceType, path);
  };

  const checkProperties = (value: unknown, properties: Record<string, PropertySpec>, resourceType: string, path: string): void => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return void problems.push(`${path}: expected an object`);
    for (const [name, child] of Object.entries(value)) {
      const property = properties[name];
      if (!property) problems.push(`${path}.${name}: ${resourceType} has no property ${name}`);
      else checkValue(child, property, resourceType, `${path}.${name}`);
    }
    for (const [name, property] of Object.entries(properties)) {
      if (property.Required && !(name in value)) problems.push(`${path}.${name}: required by ${resourceType}`);
    }
  };

  for (const [logicalId, resource] of Object.entries(template.Resources)) {
    const path = `Resources.${logicalId}`;
    const resourceSpec = spec.ResourceTypes[resource.Type];
    if (!resourceSpec) {
      problems.push(`${path}.Type: unknown resource type ${resource.Type}`);
      continue;
    }
    for (const key of Object.keys(resource)) {
      if (!RESOURCE_ATTRIBUTES.has(key)) problems.push(`${path}.${key}: not a resource attribute`);
    }
    checkProperties(resource.Properties ?? {}, resourceSpec.Properties ?? {}, resource.Type, `${path}.Properties`);
  }

  problems.push(...checkReferences(template, spec));
  return problems;
}

/** Every Ref, Fn::GetAtt and ${...} in Fn::Sub must name a parameter, resource, pseudo parameter or real attribute. */
function checkReferences(template: Template, spec: CfnSpecification): string[] {
  const problems: string[] = [];
  const parameters = new Set(Object.keys(template.Parameters ?? {}));
  const resources = template.Resources;

  const checkName = (name: string, path: string): void => {
    if (PSEUDO_PARAMETERS.has(name) || parameters.has(name) || name in resources) return;
    problems.push(`${path}: refers to ${name}, which is neither a parameter nor a resource`);
  };
  const checkAttribute = (logicalId: string, attribute: string, path: string): void => {
    const target = resources[logicalId];
    if (!target) return void problems.push(`${path}: Fn::GetAtt of unknown resource ${logicalId}`);
    const attributes = spec.ResourceTypes[target.Type]?.Attributes ?? {};
    if (!(attribute in attributes)) problems.push(`${path}: ${target.Type} has no attribute ${attribute}`);
  };

  const walk = (value: unknown, path: string): void => {
    if (Array.isArray(value)) return value.forEach((item, index) => walk(item, `${path}[${index}]`));
    if (typeof value !== 'object' || value === null) return;
    for (const [key, child] of Object.entries(value)) {
      const childPath = `${path}.${key}`;
      if (key === 'Ref' && typeof child === 'string') checkName(child, childPath);
      else if (key === 'Fn::GetAtt') {
        const [logicalId, attribute] = Array.isArray(child) ? child : String(child).split('.');
        checkAttribute(String(logicalId), String(attribute), childPath);
      } else if (key === 'Fn::Sub') {
        const [text, variables] = Array.isArray(child) ? [child[0], child[1] ?? {}] : [child, {}];
        const local = new Set(Object.keys(variables as object));
        for (const match of String(text).matchAll(/\$\{([^!}][^}]*)\}/g)) {
          const reference = match[1]!;
          if (local.has(reference)) continue;
          const dot = reference.indexOf('.');
          if (dot > 0 && !PSEUDO_PARAMETERS.has(reference)) checkAttribute(reference.slice(0, dot), reference.slice(dot + 1), childPath);
          else checkName(reference, childPath);
        }
        walk(variables, childPath);
      } else walk(child, childPath);
    }
  };

  walk(template.Resources, 'Resources');
  walk(template.Outputs ?? {}, 'Outputs');
  for (const [logicalId, resource] of Object.entries(resources)) {
    const dependsOn = resource.DependsOn === undefined ? [] : ([] as string[]).concat(resource.DependsOn);
    for (const name of dependsOn) if (!(name in resources)) problems.push(`Resources.${logicalId}.DependsOn: unknown resource ${name}`);
  }
  return problems;
}
