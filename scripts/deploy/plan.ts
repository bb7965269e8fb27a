/**
 * The text form of a cloud API call, shared by the dry-run printer and the
 * progress lines of a real run: `S3 CreateBucket {"Bucket":"..."}`.
 * Secrets are masked and file contents are summarised, so a plan can be pasted anywhere.
 */
import { createHash } from 'node:crypto';

/** Keys whose values are credentials or shared secrets, wherever they appear (`API_KEY` too, not S3's `Key`). */
const SECRET_KEY = /(secret|token|password|passwd|credential|private|[_-]key$|apikey|accesskey)/i;
/** The password in a URL's userinfo (`redis://:pw@host`, `https://user:pw@host`), whatever key holds the URL. */
const URL_PASSWORD = /([a-z][a-z0-9+.-]*:\/\/[^\s:@/]*:)[^\s@/]+@/gi;

export function maskSecret(value: string): string {
  if (value.length === 0) return value;
  return value.length > 8 ? `${value.slice(0, 4)}****` : '****';
}

/** Bytes are shown as their size and digest: a plan is for reading, not for replaying. */
export function describeBytes(bytes: Uint8Array | string, label?: string): string {
  const digest = createHash('sha256').update(bytes).digest('hex').slice(0, 16);
  const size = typeof bytes === 'string' ? `${bytes.length} characters` : `${bytes.byteLength} bytes`;
  return `<${label ? `${label}, ` : ''}${size}, sha256 ${digest}…>`;
}

function redact(value: unknown, key: string | undefined, seen: WeakSet<object>): unknown {
  if (typeof value === 'string') {
    if (key !== undefined && SECRET_KEY.test(key)) return maskSecret(value);
    // Templates and base64 payloads would drown the plan; their digest identifies them.
    if (value.length > 200) return describeBytes(value, key);
    return value.replace(URL_PASSWORD, '$1****@');
  }
  if (value instanceof Uint8Array) return describeBytes(value, key);
  if (Array.isArray(value)) {
    // CloudFormation and SCF pass settings as [{Key|ParameterKey, Value|ParameterValue}].
    return value.map((item) => redactPair(item, seen) ?? redact(item, key, seen));
  }
  if (value !== null && typeof value === 'object') {
    if (seen.has(value)) return '<cycle>';
    seen.add(value);
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (v !== undefined) out[k] = redact(v, k, seen);
    }
    return out;
  }
  return value;
}

function redactPair(item: unknown, seen: WeakSet<object>): unknown {
  if (item === null || typeof item !== 'object') return undefined;
  const record = item as Record<string, unknown>;
  const name = record.Key ?? record.ParameterKey;
  if (typeof name !== 'string' || !SECRET_KEY.test(name)) return undefined;
  const valueKey = 'Value' in record ? 'Value' : 'ParameterValue';
  const value = record[valueKey];
  return { ...(redact(record, undefined, seen) as object), [valueKey]: typeof value === 'string' ? maskSecret(value) : value };
}

/** Deep copy of `params` with secrets masked and long payloads summarised. */
export function redactParams(params: unknown): unknown {
  return redact(params, undefined, new WeakSet());
}

export function formatCall(service: string, action: string, params: unknown): string {
  const shown = params === undefined ? '' : ` ${JSON.stringify(redactParams(params))}`;
  return `${service} ${action}${shown}`;
}
