/**
 * The request target of an HTTP request line, split into path and query
 * without `new URL(target, base)`: that resolves the target against the base
 * as a URL reference, so `//` or `//@` throw (an empty or bad host) and
 * `//x/a` silently becomes the path `/a` of host `x`. A server must answer
 * every request, so parsing here never throws.
 */
import { HandshakeError } from './errors.js';

export interface RequestTarget {
  /** Still percent-encoded, exactly as sent. */
  path: string;
  query: URLSearchParams;
}

/**
 * Origin form (`/path?query`, whatever the path holds) or absolute form
 * (`http://host/path?query`, which proxies send and servers must accept);
 * undefined for anything else (`*`, `example.com:443`, `http://[`).
 */
export function parseRequestTarget(target: string): RequestTarget | undefined {
  if (target.startsWith('/')) return split(target);
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(target);
  if (!scheme || !URL.canParse(target)) return undefined;
  const afterAuthority = target.slice(scheme[0].length).search(/[/?#]/);
  if (afterAuthority === -1) return split('/');
  const rest = target.slice(scheme[0].length + afterAuthority);
  return split(rest.startsWith('/') ? rest : `/${rest}`);
}

function split(target: string): RequestTarget {
  const withoutFragment = target.split('#', 1)[0]!;
  const mark = withoutFragment.indexOf('?');
  if (mark === -1) return { path: withoutFragment, query: new URLSearchParams() };
  return { path: withoutFragment.slice(0, mark), query: new URLSearchParams(withoutFragment.slice(mark + 1)) };
}

export class InvalidRequestTargetError extends HandshakeError {
  constructor() {
    super(400, 'invalid_request_target', 'the request target is neither a path nor an absolute URL');
  }
}
