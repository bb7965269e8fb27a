/**
 * IAM, as far as a function's own role decides its calls: the inline
 * policies of the template's AWS::IAM::Role, their resources resolved to
 * ARNs (Ref, GetAtt, Sub, Join), evaluated as IAM evaluates identity-based
 * policies: an explicit Deny wins, else an Allow must match, else the call is
 * implicitly denied. Actions and resources match with `*` and `?` wildcards,
 * actions case-insensitively. A statement with a Condition, NotAction or
 * NotResource is not evaluated (see docs/emulator.md); neither are managed
 * policies, SAM's policy templates, permission boundaries or resource
 * policies.
 */
import { referencedResources, resolveValue, type LocalStack } from './intrinsics.js';

export interface PolicyStatement {
  effect: 'Allow' | 'Deny';
  actions: RegExp[];
  resources: RegExp[];
}

export interface RolePolicy {
  roleName: string;
  statements: PolicyStatement[];
  /** What was left out, for the log: statements with a Condition, NotAction or NotResource, managed policies. */
  skipped: string[];
}

export type Decision = 'allowed' | 'implicit_deny' | 'explicit_deny';

/** The role a function's `Role` property names, read from the template; undefined for a role the template does not define. */
export function readRole(stack: LocalStack, roleValue: unknown, where: string): RolePolicy | undefined {
  const [logicalId] = referencedResources(stack.template, roleValue);
  const resource = logicalId === undefined ? undefined : stack.template.Resources[logicalId];
  if (!resource || resource.Type !== 'AWS::IAM::Role') return undefined;
  const properties = (resource.Properties ?? {}) as { Policies?: unknown; ManagedPolicyArns?: unknown[] };
  const statements: PolicyStatement[] = [];
  const skipped: string[] = [];
  for (const managed of properties.ManagedPolicyArns ?? []) skipped.push(`managed policy ${resolveValue(stack, managed, `${logicalId}.ManagedPolicyArns`)}`);
  const policies = Array.isArray(properties.Policies) ? (properties.Policies as Array<{ PolicyName?: unknown; PolicyDocument?: { Statement?: unknown } }>) : [];
  for (const policy of policies) {
    const name = String(policy.PolicyName ?? '?');
    const raw = policy.PolicyDocument?.Statement;
    for (const [index, statement] of (Array.isArray(raw) ? raw : raw ? [raw] : []).entries()) {
      const at = `${where}: ${logicalId} policy ${name} statement ${index}`;
      const entry = statement as Record<string, unknown>;
      if (entry.Condition !== undefined || entry.NotAction !== undefined || entry.NotResource !== undefined) {
        skipped.push(`${at} (Condition, NotAction or NotResource)`);
        continue;
      }
      statements.push({
        effect: entry.Effect === 'Deny' ? 'Deny' : 'Allow',
        actions: listOf(entry.Action).map((action) => wildcard(resolveValue(stack, action, at), 'i')),
        resources: listOf(entry.Resource).map((arn) => wildcard(resolveValue(stack, arn, at), '')),
      });
    }
  }
  return { roleName: stack.physicalId(logicalId!), statements, skipped };
}

/** Whether `role` lets its holder perform `action` on every one of `resources`. */
export function decide(role: RolePolicy, action: string, resource: string): Decision {
  let allowed = false;
  for (const statement of role.statements) {
    if (!statement.actions.some((pattern) => pattern.test(action)) || !statement.resources.some((pattern) => pattern.test(resource))) continue;
    if (statement.effect === 'Deny') return 'explicit_deny';
    allowed = true;
  }
  return allowed ? 'allowed' : 'implicit_deny';
}

/** AWS's text for a denied call, e.g. "User: arn:aws:sts::…:assumed-role/ROLE/FUNCTION is not authorized to perform: …". */
export function deniedMessage(principalArn: string, action: string, resource: string, decision: Decision, withReason: boolean): string {
  const base = `User: ${principalArn} is not authorized to perform: ${action} on resource: ${resource}`;
  if (!withReason) return base;
  return decision === 'explicit_deny'
    ? `${base} with an explicit deny in an identity-based policy`
    : `${base} because no identity-based policy allows the ${action} action`;
}

function listOf(value: unknown): unknown[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

function wildcard(pattern: string, flags: string): RegExp {
  const source = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${source}$`, flags);
}

