/**
 * Resolves the CloudFormation intrinsic functions a template's function
 * environment uses (Ref, Fn::GetAtt, Fn::Sub, Fn::Join, Fn::Select) into the
 * strings CloudFormation would put there, for a local "stack" whose physical
 * names are deterministic.
 */
import { TemplateError, type Template } from '../aws-template.js';

export interface LocalStack {
  template: Template;
  stackName: string;
  region: string;
  accountId: string;
  /** Values of the template's parameters that differ from their defaults. */
  parameters: Record<string, string>;
  /** What `Ref` yields for a resource type (a table's name, a function's name, an API's id). */
  physicalId(logicalId: string): string;
  /** What `Fn::GetAtt` yields; undefined when we do not model that attribute. */
  attribute(logicalId: string, name: string): string | undefined;
}

const PSEUDO_PARAMETERS = (stack: LocalStack): Record<string, string> => ({
  'AWS::Region': stack.region,
  'AWS::AccountId': stack.accountId,
  'AWS::StackName': stack.stackName,
  'AWS::StackId': `arn:aws:cloudformation:${stack.region}:${stack.accountId}:stack/${stack.stackName}/00000000-0000-0000-0000-000000000000`,
  'AWS::Partition': 'aws',
  'AWS::URLSuffix': 'amazonaws.com',
  'AWS::NoValue': '',
});

/** The intrinsic functions the emulator resolves, for the message about one it does not. */
const RESOLVED = 'Ref, Fn::GetAtt, Fn::Sub, Fn::Join and Fn::Select of a list';

export function resolveValue(stack: LocalStack, value: unknown, where: string): string {
  if (typeof value === 'string') return value;
  if (value === undefined || value === null) throw new TemplateError(`${where}: no value is given`);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const entries = Object.entries(value);
    if (entries.length === 1) {
      const [fn, arg] = entries[0]!;
      switch (fn) {
        case 'Ref':
          return resolveRef(stack, String(arg), where);
        case 'Fn::GetAtt':
          return resolveGetAtt(stack, arg, where);
        case 'Fn::Sub':
          return resolveSub(stack, arg, where);
        case 'Fn::Join': {
          const [separator, parts] = arg as [string, unknown[]];
          return parts.map((part) => resolveValue(stack, part, where)).join(separator);
        }
        case 'Fn::Select': {
          const [index, list] = arg as [unknown, unknown];
          if (!Array.isArray(list)) throw new TemplateError(`${where}: Fn::Select from ${JSON.stringify(list)} is not resolved locally (the emulator resolves ${RESOLVED})`);
          return resolveValue(stack, list[Number(resolveValue(stack, index, where))], where);
        }
        default:
          if (fn === 'Ref' || fn.startsWith('Fn::')) throw new TemplateError(`${where}: ${fn} is not resolved locally (the emulator resolves ${RESOLVED})`);
      }
    }
  }
  throw new TemplateError(`${where}: cannot resolve ${JSON.stringify(value)} locally`);
}

function resolveRef(stack: LocalStack, name: string, where: string): string {
  const pseudo = PSEUDO_PARAMETERS(stack)[name];
  if (pseudo !== undefined) return pseudo;
  const parameter = stack.template.Parameters?.[name];
  if (parameter) {
    const value = stack.parameters[name] ?? parameter.Default;
    if (value === undefined) throw new TemplateError(`${where}: parameter ${name} has no default and no value was given`);
    return String(value);
  }
  if (stack.template.Resources[name]) return stack.physicalId(name);
  throw new TemplateError(`${where}: Ref to unknown name ${name}`);
}

function resolveGetAtt(stack: LocalStack, arg: unknown, where: string): string {
  const [logicalId, attribute] = typeof arg === 'string' ? splitOnce(arg, '.') : (arg as [string, string]);
  if (!stack.template.Resources[logicalId]) throw new TemplateError(`${where}: Fn::GetAtt of unknown resource ${logicalId}`);
  const value = stack.attribute(logicalId, attribute);
  if (value === undefined) throw new TemplateError(`${where}: Fn::GetAtt ${logicalId}.${attribute} is not emulated`);
  return value;
}

function resolveSub(stack: LocalStack, arg: unknown, where: string): string {
  const [text, variables] = typeof arg === 'string' ? [arg, {}] : (arg as [string, Record<string, unknown>]);
  return text.replace(/\$\{([^}]*)\}/g, (_match, name: string) => {
    // `${!Literal}` is how a Sub writes `${Literal}` itself, e.g. an IAM policy variable.
    if (name.startsWith('!')) return `\${${name.slice(1)}}`;
    if (name in variables) return resolveValue(stack, variables[name], where);
    return name.includes('.') && !name.startsWith('AWS::')
      ? resolveGetAtt(stack, name, where)
      : resolveRef(stack, name, where);
  });
}

/**
 * The logical ids a value points at (through Ref, GetAtt or ${...} in Sub),
 * so a route's Target can be followed to its integration and on to its function.
 */
export function referencedResources(template: Template, value: unknown): string[] {
  const found = new Set<string>();
  const visit = (node: unknown): void => {
    if (typeof node === 'string') {
      for (const match of node.matchAll(/\$\{([^}!.]+)(\.[^}]*)?\}/g)) found.add(match[1]!);
      return;
    }
    if (Array.isArray(node)) return node.forEach(visit);
    if (!node || typeof node !== 'object') return;
    for (const [key, arg] of Object.entries(node)) {
      if (key === 'Ref' && typeof arg === 'string') found.add(arg);
      else if (key === 'Fn::GetAtt') found.add(typeof arg === 'string' ? splitOnce(arg, '.')[0] : String((arg as unknown[])[0]));
      else visit(arg);
    }
  };
  visit(value);
  return [...found].filter((id) => template.Resources[id] !== undefined);
}

function splitOnce(text: string, separator: string): [string, string] {
  const at = text.indexOf(separator);
  return at < 0 ? [text, ''] : [text.slice(0, at), text.slice(at + 1)];
}
