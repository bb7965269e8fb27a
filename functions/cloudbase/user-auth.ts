/**
 * An `authenticate` hook for apps whose users sign in with CloudBase
 * (@cloudbase/js-sdk): the client passes its access token as `?token=`
 * (browsers cannot set headers on a WebSocket upgrade), and the hook asks
 * CloudBase's auth service who it belongs to (`GET /auth/v1/user/me`).
 * @cloudbase/node-sdk has no call that checks an end user's token; with
 * `profile: true` the hook also loads it, an optional peer dependency, to
 * read the user's full record with `auth().getEndUserInfo(uid)`.
 */
import type { AuthDecision, HandshakeRequest } from '../../shared/app.js';
import { ConfigError } from '../../shared/errors.js';
import type { JsonObject, JsonValue } from '../../shared/protocol.js';

export interface CloudbaseUserAuthOptions {
  /** The environment the users belong to; default SCF_NAMESPACE (set in every CloudBase function), then TCB_ENV. */
  envId?: string;
  /** The query parameter holding the access token; default `token`. */
  tokenParam?: string;
  /** Where the auth service is; default `https://{envId}.api.tcloudbasegateway.com`. */
  authBaseUrl?: string;
  /** Also read the user's record through @cloudbase/node-sdk and keep it in the identity. */
  profile?: boolean;
  /** Passed to node-sdk's `init` with the env id (credentials, region, serviceUrl). */
  sdkOptions?: Record<string, unknown>;
  /** `uid`: the connection's clientId is the user id, whatever the client asked for. */
  clientIdFrom?: 'uid';
}

/** What the hook keeps as the connection's identity. */
export interface CloudbaseUser extends JsonObject {
  uid: string;
  name: string;
}

interface NodeSdk {
  init(config: Record<string, unknown>): { auth(): { getEndUserInfo(uid: string): Promise<{ userInfo?: Record<string, unknown>; code?: string; message?: string }> } };
}

export function cloudbaseUserAuth(options: CloudbaseUserAuthOptions = {}): (request: HandshakeRequest) => Promise<AuthDecision> {
  const tokenParam = options.tokenParam ?? 'token';
  let sdkApp: Promise<ReturnType<NodeSdk['init']>> | undefined;
  return async (request) => {
    const envId = options.envId ?? process.env.SCF_NAMESPACE ?? process.env.TCB_ENV;
    if (!envId) throw new ConfigError('cloudbaseUserAuth needs the environment id: set envId, or run where SCF_NAMESPACE or TCB_ENV is set');
    const token = request.query[tokenParam];
    if (!token) return { allow: false, reason: `sign in first: pass the CloudBase access token as ?${tokenParam}=` };
    const base = (options.authBaseUrl ?? `https://${envId}.api.tcloudbasegateway.com`).replace(/\/+$/, '');
    const response = await fetch(`${base}/auth/v1/user/me`, { headers: { authorization: `Bearer ${token}` } });
    if (response.status === 401 || response.status === 403) return { allow: false, reason: 'the CloudBase access token is not valid' };
    if (!response.ok) throw new Error(`CloudBase auth answered HTTP ${response.status}`);
    const me = (await response.json()) as Record<string, unknown>;
    const uid = String(me.sub ?? me.user_id ?? '');
    if (!uid) throw new Error('CloudBase auth answered without a user id');
    const identity: CloudbaseUser = { uid, name: typeof me.name === 'string' ? me.name : '' };
    if (options.profile) {
      sdkApp ??= loadSdk().then((sdk) => sdk.init({ ...options.sdkOptions, env: envId }));
      const found = await (await sdkApp).auth().getEndUserInfo(uid);
      if (found.code) throw new Error(`getEndUserInfo failed: ${found.code}`);
      identity.profile = jsonOnly(found.userInfo ?? {});
    }
    return options.clientIdFrom === 'uid' ? { allow: true, identity, clientId: uid } : { allow: true, identity };
  };
}

async function loadSdk(): Promise<NodeSdk> {
  try {
    const loaded = (await import('@cloudbase/node-sdk')) as unknown as { default?: NodeSdk } & NodeSdk;
    return loaded.default ?? loaded;
  } catch {
    throw new ConfigError('cloudbaseUserAuth({ profile: true }) needs @cloudbase/node-sdk: npm install @cloudbase/node-sdk');
  }
}

/** The record as JSON values only, so every registry can store it. */
function jsonOnly(record: Record<string, unknown>): JsonObject {
  return JSON.parse(JSON.stringify(record)) as { [key: string]: JsonValue };
}
