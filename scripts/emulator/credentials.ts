/**
 * Who is calling, and may they: each function gets its own access key, as
 * Lambda hands each function its role's session (AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), and a call to @connections,
 * Lambda Invoke or DynamoDB is checked twice, as AWS checks it: its SigV4
 * signature recomputed with that key's secret, then the action on the
 * resource against the function's role (iam.ts). The operator's own
 * credentials (`local`/`local`, what tests, benches and the CLI use) are
 * the account's administrator: signed, never denied.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Logger } from '../../shared/log.js';
import { decide, deniedMessage, type Decision, type RolePolicy } from './iam.js';
import type { RequestContext } from './iam-conditions.js';
import { checkSignature, type SignatureFailure, type SigningCredentials } from './sigv4.js';
import type { FunctionSpec } from './stack.js';

export interface Principal extends SigningCredentials {
  /** arn:aws:sts::ACCOUNT:assumed-role/ROLE/FUNCTION for a function. */
  arn: string;
  /** undefined: not checked (the operator, or a function whose role the template does not define). */
  role: RolePolicy | undefined;
}

/** One action on one resource, as IAM sees a call. */
export interface Call {
  action: string;
  resource: string;
  /** The service's own condition keys the request carries (e.g. dynamodb:LeadingKeys), by their names as AWS writes them. */
  keys?: Record<string, string[]>;
}

export type Refusal =
  | { kind: 'signature'; failure: SignatureFailure }
  | { kind: 'denied'; principal: Principal; call: Call; decision: Exclude<Decision, 'allowed'> };

/** Past this many remembered decisions the cache starts over: connection ids make execute-api resources endless. */
const MAX_CACHED_DECISIONS = 10_000;

export class AccessControl {
  private readonly principals = new Map<string, Principal>();
  private readonly ofFunction = new Map<string, Principal>();
  private readonly decisions = new Map<string, Decision>();

  constructor(
    functions: Iterable<FunctionSpec>,
    private readonly accountId: string,
    private readonly region: string,
    private readonly operator: SigningCredentials,
    private readonly logger: Logger,
  ) {
    this.principals.set(operator.accessKeyId, { ...operator, arn: `arn:aws:iam::${accountId}:root`, role: undefined });
    for (const spec of functions) {
      const principal: Principal = {
        // The shape of an STS session's key: ASIA and 16 more characters of [A-Z2-7].
        accessKeyId: `ASIA${base32(16)}`,
        secretAccessKey: randomBytes(30).toString('base64'),
        sessionToken: randomBytes(48).toString('base64'),
        arn: spec.role ? `arn:aws:sts::${accountId}:assumed-role/${spec.role.roleName}/${spec.name}` : `arn:aws:sts::${accountId}:assumed-role/unknown/${spec.name}`,
        role: spec.role,
      };
      this.principals.set(principal.accessKeyId, principal);
      this.ofFunction.set(spec.name, principal);
      if (!spec.role) logger.warn('function_calls_not_checked', { function: spec.name, reason: 'its Role is not an AWS::IAM::Role of the template' });
      for (const skipped of spec.role?.skipped ?? []) logger.warn('policy_not_evaluated', { function: spec.name, role: spec.role!.roleName, skipped });
    }
  }

  /** The variables Lambda sets for a function's session. */
  environmentOf(functionName: string): Record<string, string> {
    const principal = this.ofFunction.get(functionName)!;
    return { AWS_ACCESS_KEY_ID: principal.accessKeyId, AWS_SECRET_ACCESS_KEY: principal.secretAccessKey, AWS_SESSION_TOKEN: principal.sessionToken! };
  }

  /** undefined when `req` is signed for `service` by a known key whose role allows every call. */
  check(req: IncomingMessage, body: Buffer, service: string, calls: Call[]): Refusal | undefined {
    const accessKeyId = /Credential=([^/,\s]+)\//.exec(req.headers.authorization ?? '')?.[1];
    const principal = (accessKeyId !== undefined && this.principals.get(accessKeyId)) || undefined;
    // An unknown key is checked against the operator's, which fails as AWS fails an unknown key.
    const failure = checkSignature(req, body, service, principal ?? this.operator);
    if (failure) return { kind: 'signature', failure };
    const role = principal!.role;
    if (!role) return undefined;
    for (const call of calls) {
      const decision = this.decision(principal!.accessKeyId, role, call);
      if (decision === 'allowed') continue;
      // What the role could not be read for may be what was meant to allow this call: say so beside the denial.
      this.logger.warn('access_denied', {
        service,
        principal: principal!.arn,
        action: call.action,
        resource: call.resource,
        ...(role.skipped.length > 0 ? { notEvaluated: role.skipped } : {}),
      });
      return { kind: 'denied', principal: principal!, call, decision };
    }
    return undefined;
  }

  private decision(accessKeyId: string, role: RolePolicy, call: Call): Decision {
    // A role with conditions decides by the request too (the time, its keys): nothing to remember.
    if (role.conditional) return decide(role, call.action, call.resource, this.contextOf(role, call));
    const key = `${accessKeyId}\n${call.action}\n${call.resource}`;
    let decision = this.decisions.get(key);
    if (decision === undefined) {
      if (this.decisions.size >= MAX_CACHED_DECISIONS) this.decisions.clear();
      decision = decide(role, call.action, call.resource);
      this.decisions.set(key, decision);
    }
    return decision;
  }

  /**
   * The condition keys AWS puts in the request context of a call made with a
   * Lambda role's session, as far as the emulator can know them. Left out, so
   * absent as for a key AWS does not send: aws:username (never there for a
   * role), aws:SourceIp and aws:SourceVpc (Lambda's own network), tags.
   */
  private contextOf(role: RolePolicy, call: Call): RequestContext {
    const now = new Date();
    const context = new Map<string, string[]>([
      ['aws:requestedregion', [this.region]],
      // For a role's session AWS gives the role's ARN here, not the session's.
      ['aws:principalarn', [role.roleArn]],
      ['aws:principalaccount', [this.accountId]],
      ['aws:principaltype', ['AssumedRole']],
      ['aws:currenttime', [now.toISOString().replace(/\.\d{3}Z$/, 'Z')]],
      ['aws:epochtime', [String(Math.floor(now.getTime() / 1000))]],
      // The SDK reaches every AWS endpoint over TLS; the emulator's plain-HTTP DynamoDB port is a local shortcut.
      ['aws:securetransport', ['true']],
      ['aws:viaawsservice', ['false']],
      ['aws:tokenissuetime', [this.startedAt]],
    ]);
    for (const [key, values] of Object.entries(call.keys ?? {})) context.set(key.toLowerCase(), values);
    return context;
  }

  /** When the sessions were made: their aws:TokenIssueTime. */
  private readonly startedAt = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** AWS's message for a denied call; execute-api's has no "because" clause. */
export function refusalMessage(refusal: Extract<Refusal, { kind: 'denied' }>, withReason = true): string {
  return deniedMessage(refusal.principal.arn, refusal.call.action, refusal.call.resource, refusal.decision, withReason);
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function base32(length: number): string {
  return [...randomBytes(length)].map((byte) => BASE32[byte % 32]).join('');
}
