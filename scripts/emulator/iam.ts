/**
 * IAM, as far as a function's own role decides its calls: every policy of
 * the role the template gives it, evaluated as IAM evaluates identity-based
 * policies: an explicit Deny wins, else an Allow must match, else the call is
 * implicitly denied. A statement matches on Action or NotAction, Resource or
 * NotResource (`*` and `?` wildcards, actions case-insensitively) and its
 * Condition block (iam-conditions.ts) over the request's context, with the
 * policy variables in both resolved from that context (iam-variables.ts).
 *
 * The policies are the role's inline ones, the AWS::IAM::Policy resources
 * attached to it, its ManagedPolicyArns (the template's own
 * AWS::IAM::ManagedPolicy, or AWS managed policies from iam-catalog.ts), and
 * for a SAM function without a Role the role SAM makes from its `Policies`:
 * inline statements, managed policies by name or ARN, and SAM policy
 * templates. A policy the emulator cannot read (an unknown managed policy, a
 * policy template it does not expand, a condition operator it does not
 * evaluate) allows nothing; it is logged at start and named again when a call
 * is denied.
 *
 * A permissions boundary (the role's PermissionsBoundary, or for SAM's role
 * the function's) caps what those policies allow: a call needs an Allow in
 * both, and a Deny in either refuses it
 * (https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html).
 * A boundary the emulator cannot read allows nothing. SCPs, session policies
 * and resource policies are not evaluated.
 */
import type { TemplateResource } from '../aws-template.js';
import { expandPolicyTemplate, isPolicyTemplate, managedPolicy, managedPolicyArn, type RawStatement } from './iam-catalog.js';
import { parseConditions, UnsupportedConditionError, wildcardPattern, type Condition, type RequestContext } from './iam-conditions.js';
import { expand, hasVariables, VARIABLES_VERSION } from './iam-variables.js';
import { referencedResources, resolveValue, type LocalStack } from './intrinsics.js';

export interface PolicyStatement {
  effect: 'Allow' | 'Deny';
  /** With `notActions`, the statement covers every action but these. */
  actions: RegExp[];
  notActions: boolean;
  /** Each of the statement's Resource (or NotResource) entries, matched in the request's context (its policy variables). */
  resources: Array<(resource: string, context: RequestContext) => boolean>;
  notResources: boolean;
  conditions: Condition[];
  /** Its Resource or Condition holds policy variables: it decides by the request. */
  variables: boolean;
}

export interface RolePolicy {
  roleName: string;
  roleArn: string;
  statements: PolicyStatement[];
  /** The permissions boundary's statements, when the role has one. */
  boundary?: PolicyStatement[];
  /** What allows nothing because the emulator cannot read it, for the log: unknown managed policies, templates, operators. */
  skipped: string[];
  /** Some statement has a Condition or a policy variable: its decisions depend on the request, not only on action and resource. */
  conditional: boolean;
}

/** A denial names the kind of policy that decided it, as AWS's message does. */
export type Decision = 'allowed' | 'implicit_deny' | 'explicit_deny' | 'boundary_implicit_deny' | 'boundary_explicit_deny';

/** SAM's name for the role it makes for a function that names none. */
const SAM_ROLE_SUFFIX = 'Role';
const BASIC_EXECUTION_ROLE = managedPolicyArn('AWSLambdaBasicExecutionRole')!;

/** The role a function's `Role` property names, read from the template; undefined for a role the template does not define. */
export function readRole(stack: LocalStack, roleValue: unknown, where: string): RolePolicy | undefined {
  const [logicalId] = referencedResources(stack.template, roleValue);
  const resource = logicalId === undefined ? undefined : stack.template.Resources[logicalId];
  if (!resource || resource.Type !== 'AWS::IAM::Role') return undefined;
  const properties = (resource.Properties ?? {}) as { Policies?: unknown; ManagedPolicyArns?: unknown[]; PermissionsBoundary?: unknown };
  const role = new RoleReader(stack, where, stack.physicalId(logicalId!), stack.attribute(logicalId!, 'Arn')!);
  if (properties.PermissionsBoundary !== undefined) role.boundedBy(properties.PermissionsBoundary, `${logicalId}.PermissionsBoundary`);
  for (const managed of properties.ManagedPolicyArns ?? []) role.managed(managed, `${logicalId}.ManagedPolicyArns`);
  const policies = Array.isArray(properties.Policies) ? (properties.Policies as Array<{ PolicyName?: unknown; PolicyDocument?: unknown }>) : [];
  for (const policy of policies) role.document(policy.PolicyDocument, `${logicalId} policy ${String(policy.PolicyName ?? '?')}`);
  for (const [policyId, policy] of Object.entries(stack.template.Resources)) {
    if (policy.Type !== 'AWS::IAM::Policy' || !referencedResources(stack.template, policy.Properties?.Roles).includes(logicalId!)) continue;
    role.document(policy.Properties?.PolicyDocument, `${policyId} (AWS::IAM::Policy)`);
  }
  return role.result();
}

/**
 * The role SAM makes for an AWS::Serverless::Function without a Role:
 * AWSLambdaBasicExecutionRole plus its `Policies` (a name, an ARN, an inline
 * document, a policy template, or a list of them), bounded by the function's
 * PermissionsBoundary when it has one.
 */
export function readSamRole(stack: LocalStack, logicalId: string, policies: unknown, permissionsBoundary?: unknown): RolePolicy {
  const roleName = `${stack.stackName}-${logicalId}${SAM_ROLE_SUFFIX}`;
  const role = new RoleReader(stack, logicalId, roleName, `arn:aws:iam::${stack.accountId}:role/${roleName}`);
  if (permissionsBoundary !== undefined) role.boundedBy(permissionsBoundary, `${logicalId}.PermissionsBoundary`);
  role.managed(BASIC_EXECUTION_ROLE, `${logicalId}.Policies`);
  for (const [index, entry] of (Array.isArray(policies) ? policies : policies === undefined ? [] : [policies]).entries()) {
    const at = `${logicalId}.Policies[${index}]`;
    if (typeof entry === 'string') {
      role.managed(entry.startsWith('arn:') ? entry : (managedPolicyArn(entry) ?? entry), at);
      continue;
    }
    const object = (entry ?? {}) as Record<string, unknown>;
    const [name, parameters] = Object.entries(object)[0] ?? [];
    if (object.Statement !== undefined) role.document(object, at);
    else if (name !== undefined && isPolicyTemplate(name)) role.template(name, parameters, at);
    else if (name !== undefined && (name === 'Ref' || name.startsWith('Fn::'))) role.managed(entry, at);
    else role.skip(`${at}: SAM policy template ${name ?? '?'} (not expanded by the emulator)`);
  }
  return role.result();
}

/** Collects a role's statements from its policies, and what it could not read. */
class RoleReader {
  private readonly statements: PolicyStatement[] = [];
  private readonly skipped: string[] = [];
  private boundary: RoleReader | undefined;

  constructor(
    private readonly stack: LocalStack,
    private readonly where: string,
    private readonly roleName: string,
    private readonly roleArn: string,
  ) {}

  managed(value: unknown, at: string): void {
    const arn = resolveValue(this.stack, value, `${this.where}: ${at}`);
    const own = Object.entries(this.stack.template.Resources).find(
      ([id, resource]) => resource.Type === 'AWS::IAM::ManagedPolicy' && this.stack.physicalId(id) === arn,
    );
    if (own) return this.document(own[1].Properties?.PolicyDocument, `${own[0]} (AWS::IAM::ManagedPolicy)`);
    const statements = managedPolicy(arn);
    if (!statements) return this.skip(`${at}: managed policy ${arn} (not in the emulator's table: it allows nothing here)`);
    // AWS managed policies are all of the current version.
    statements.forEach((statement, index) => this.statement(statement, `managed policy ${arn} statement ${index}`, true));
  }

  /** The managed policy `value` names becomes the role's permissions boundary, read as any managed policy is. */
  boundedBy(value: unknown, at: string): void {
    this.boundary = new RoleReader(this.stack, this.where, this.roleName, this.roleArn);
    this.boundary.managed(value, at);
  }

  template(name: string, parameters: unknown, at: string): void {
    const given = Object.fromEntries(
      Object.entries((parameters ?? {}) as Record<string, unknown>).map(([key, value]) => [key, resolveValue(this.stack, value, `${this.where}: ${at}.${name}.${key}`)]),
    );
    try {
      // SAM writes its templates' policies at the current version.
      expandPolicyTemplate(name, given, this.stack).forEach((statement, index) => this.statement(statement, `${at} ${name} statement ${index}`, true));
    } catch (error) {
      this.skip(`${at}: ${(error as Error).message}`);
    }
  }

  document(document: unknown, name: string): void {
    const { Statement: raw, Version: version } = (document ?? {}) as { Statement?: unknown; Version?: unknown };
    const variables = version === VARIABLES_VERSION;
    for (const [index, statement] of (Array.isArray(raw) ? raw : raw ? [raw] : []).entries()) this.statement(statement as RawStatement, `${name} statement ${index}`, variables);
  }

  /** With `variables` (its policy's Version is 2012-10-17), `${...}` in a Resource or Condition value is a policy variable. */
  statement(entry: RawStatement, name: string, variables: boolean): void {
    const at = `${this.where}: ${name}`;
    const resolve = (value: unknown) => resolveValue(this.stack, value, at);
    const notActions = entry.NotAction !== undefined;
    const notResources = entry.NotResource !== undefined;
    const resourceArns = listOf(notResources ? entry.NotResource : entry.Resource).map(resolve);
    let conditions: Condition[] = [];
    if (entry.Condition !== undefined) {
      try {
        conditions = parseConditions(entry.Condition, resolve, variables);
      } catch (error) {
        if (!(error instanceof UnsupportedConditionError)) throw error;
        // An Allow left out allows nothing, which is safe; a Deny left out would allow more than AWS does, so it then denies always.
        if (entry.Effect !== 'Deny') return this.skip(`${at} (${error.message})`);
        this.skip(`${at} (${error.message}; as a Deny it is applied without its Condition)`);
      }
    }
    this.statements.push({
      effect: entry.Effect === 'Deny' ? 'Deny' : 'Allow',
      actions: listOf(notActions ? entry.NotAction : entry.Action).map((action) => wildcardPattern(resolve(action), 'i')),
      notActions,
      resources: resourceArns.map((arn) => resourceMatcher(arn, variables)),
      notResources,
      conditions,
      variables: variables && [...resourceArns, ...conditions.flatMap((condition) => condition.values)].some(hasVariables),
    });
  }

  skip(what: string): void {
    this.skipped.push(what);
  }

  result(): RolePolicy {
    const boundary = this.boundary?.result();
    const statements = [...this.statements, ...(boundary?.statements ?? [])];
    return {
      roleName: this.roleName,
      roleArn: this.roleArn,
      statements: this.statements,
      ...(boundary ? { boundary: boundary.statements } : {}),
      skipped: [...this.skipped, ...(boundary?.skipped.map((what) => `permissions boundary: ${what}`) ?? [])],
      conditional: statements.some((statement) => statement.conditions.length > 0 || statement.variables),
    };
  }
}

/**
 * Whether `role` lets its holder perform `action` on `resource`, in a request
 * whose condition keys are `context`: a Deny in its policies or its boundary
 * refuses; otherwise its policies must allow, and then its boundary too.
 */
export function decide(role: RolePolicy, action: string, resource: string, context: RequestContext = new Map()): Decision {
  const granted = evaluate(role.statements, action, resource, context);
  if (granted === 'explicit_deny') return granted;
  const bounded = role.boundary && evaluate(role.boundary, action, resource, context);
  if (bounded === 'explicit_deny') return 'boundary_explicit_deny';
  if (granted !== 'allowed') return granted;
  return bounded === 'implicit_deny' ? 'boundary_implicit_deny' : 'allowed';
}

function evaluate(statements: PolicyStatement[], action: string, resource: string, context: RequestContext): 'allowed' | 'implicit_deny' | 'explicit_deny' {
  let allowed = false;
  for (const statement of statements) {
    if (statement.actions.some((pattern) => pattern.test(action)) === statement.notActions) continue;
    if (statement.resources.some((matches) => matches(resource, context)) === statement.notResources) continue;
    if (!statement.conditions.every((condition) => condition.test(context))) continue;
    if (statement.effect === 'Deny') return 'explicit_deny';
    allowed = true;
  }
  return allowed ? 'allowed' : 'implicit_deny';
}

/** AWS's text for a denied call, e.g. "User: arn:aws:sts::…:assumed-role/ROLE/FUNCTION is not authorized to perform: …". */
export function deniedMessage(principalArn: string, action: string, resource: string, decision: Decision, withReason: boolean): string {
  const base = `User: ${principalArn} is not authorized to perform: ${action} on resource: ${resource}`;
  if (!withReason) return base;
  // The policy type as AWS names it (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html).
  const policy = decision === 'boundary_explicit_deny' || decision === 'boundary_implicit_deny' ? { a: 'a permissions boundary', no: 'no permissions boundary' } : { a: 'an identity-based policy', no: 'no identity-based policy' };
  return decision === 'explicit_deny' || decision === 'boundary_explicit_deny'
    ? `${base} with an explicit deny in ${policy.a}`
    : `${base} because ${policy.no} allows the ${action} action`;
}

/** Whether a template resource is a SAM function that gets the role SAM makes. */
export function getsSamRole(resource: TemplateResource): boolean {
  return resource.Type === 'AWS::Serverless::Function' && resource.Properties?.Role === undefined;
}

/** A Resource entry as a test of a call's resource; with policy variables, resolved from each call's context (no match when one cannot be). */
function resourceMatcher(arn: string, variables: boolean): (resource: string, context: RequestContext) => boolean {
  if (!variables || !hasVariables(arn)) {
    const pattern = wildcardPattern(arn, '');
    return (resource) => pattern.test(resource);
  }
  return (resource, context) => {
    const expanded = expand(arn, context);
    return expanded !== undefined && wildcardPattern(expanded, '').test(resource);
  };
}

function listOf(value: unknown): unknown[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}
