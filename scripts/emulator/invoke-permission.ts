/**
 * Whether API Gateway may call a route's Lambda function, decided from the
 * template as AWS decides it before the call: through the integration's
 * CredentialsArn, a role API Gateway assumes (its trust policy must let
 * apigateway.amazonaws.com assume it, and its policies must allow
 * lambda:InvokeFunction on the function), or, without one, through the
 * function's resource policy, an AWS::Lambda::Permission for
 * apigateway.amazonaws.com whose SourceArn (if it has one) matches the
 * route's execute-api ARN. On AWS a route without either fails before its
 * function runs: a `$connect` is answered 500, a message gets `Internal
 * server error`, and the execution log says "Invalid permissions on Lambda
 * function". Templates often miss it, because the console adds the
 * permission when a route is wired by hand and CloudFormation does not.
 */
import type { TemplateResource } from '../aws-template.js';
import { arnLike } from './iam-conditions.js';
import { decide, readRole } from './iam.js';
import { referencedResources, resolveValue, type LocalStack } from './intrinsics.js';

const API_GATEWAY = 'apigateway.amazonaws.com';
/** CredentialsArn's value that passes the caller's own identity through instead of a role. */
const CALLER_IDENTITY = 'arn:aws:iam::*:user/*';

export interface InvokeTarget {
  integrationId: string;
  integration: TemplateResource;
  functionId: string;
  /** arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/{routeKey} */
  sourceArn: string;
}

/** Undefined when API Gateway may invoke the function; otherwise why not, in words for the log. */
export function invokeRefusal(stack: LocalStack, target: InvokeTarget): string | undefined {
  const functionName = stack.physicalId(target.functionId);
  const functionArn = stack.attribute(target.functionId, 'Arn')!;
  const credentials = target.integration.Properties?.CredentialsArn;
  if (credentials !== undefined && credentials !== null) return roleRefusal(stack, target, credentials, functionArn);
  for (const [logicalId, resource] of Object.entries(stack.template.Resources)) {
    if (resource.Type !== 'AWS::Lambda::Permission') continue;
    const properties = resource.Properties ?? {};
    const value = (name: string) => (properties[name] === undefined ? undefined : resolveValue(stack, properties[name], `${logicalId}.${name}`));
    const named = value('FunctionName');
    if (named !== functionName && named !== functionArn && !named?.endsWith(`:function:${functionName}`)) continue;
    if (!['lambda:invokefunction', 'lambda:*'].includes(String(value('Action')).toLowerCase())) continue;
    if (value('Principal') !== API_GATEWAY) continue;
    const sourceAccount = value('SourceAccount');
    if (sourceAccount !== undefined && sourceAccount !== stack.accountId) continue;
    const sourceArn = value('SourceArn');
    if (sourceArn === undefined || arnLike(target.sourceArn, sourceArn)) return undefined;
  }
  return (
    `no AWS::Lambda::Permission lets ${API_GATEWAY} invoke ${functionName} from ${target.sourceArn}, ` +
    `and ${target.integrationId} has no CredentialsArn (Invalid permissions on Lambda function)`
  );
}

function roleRefusal(stack: LocalStack, target: InvokeTarget, credentials: unknown, functionArn: string): string | undefined {
  const where = `${target.integrationId}.CredentialsArn`;
  if (resolveValue(stack, credentials, where) === CALLER_IDENTITY) return undefined;
  const role = readRole(stack, credentials, where);
  // A role from outside the template cannot be read here; AWS decides it.
  if (!role) return undefined;
  if (!trustsApiGateway(stack, credentials)) return `${role.roleName}, ${where}, does not let ${API_GATEWAY} assume it (its AssumeRolePolicyDocument)`;
  if (decide(role, 'lambda:InvokeFunction', functionArn) !== 'allowed') {
    return `${role.roleName}, ${where}, does not allow lambda:InvokeFunction on ${functionArn} (Invalid permissions on Lambda function)`;
  }
  return undefined;
}

/** Whether the role `roleValue` names (a template role, as readRole found it) lets API Gateway assume it. */
function trustsApiGateway(stack: LocalStack, roleValue: unknown): boolean {
  const [logicalId] = referencedResources(stack.template, roleValue);
  const role = logicalId === undefined ? undefined : stack.template.Resources[logicalId];
  const document = role?.Properties?.AssumeRolePolicyDocument as { Statement?: unknown } | undefined;
  const statements = Array.isArray(document?.Statement) ? document.Statement : document?.Statement ? [document.Statement] : [];
  return statements.some((statement: { Effect?: unknown; Principal?: { Service?: unknown }; Action?: unknown }) => {
    const services = [statement?.Principal?.Service].flat();
    const actions = [statement?.Action].flat().map((action) => String(action).toLowerCase());
    return statement?.Effect === 'Allow' && services.includes(API_GATEWAY) && (actions.includes('sts:assumerole') || actions.includes('sts:*'));
  });
}
