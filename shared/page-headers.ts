/**
 * The security headers of the chat page, the same wherever it is served (the
 * CloudBase target, the AWS emulator). The page is one document with its
 * script and stylesheet inline, so its Content-Security-Policy admits exactly
 * those two by hash (computed when the page is built, scripts/page.ts) and
 * nothing else; the policy also travels inside the page as a
 * `<meta http-equiv>`, which protects a copy opened from disk.
 */

/** SHA-256 sources (`'sha256-…'`) of the page's inline script and stylesheet. */
export interface PageHashes {
  script: string;
  style: string;
}

/**
 * The policy a `<meta http-equiv>` can carry. connect-src takes any ws: and
 * wss: host because the user types the server's address; there is nothing to
 * fetch, frame or submit, so everything else is refused.
 */
export function pagePolicy(hashes: PageHashes): string {
  return [
    "default-src 'none'",
    `script-src ${hashes.script}`,
    `style-src ${hashes.style}`,
    'connect-src ws: wss:',
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');
}

const META_POLICY = /<meta\s+http-equiv="Content-Security-Policy"\s+content="([^"]*)"\s*\/?>/i;

/**
 * The response headers for `html`. Its own meta policy is repeated as a
 * header, with `frame-ancestors 'none'` added: a meta policy cannot carry
 * that directive (browsers ignore it there), so framing is refused here, and
 * by X-Frame-Options for browsers that predate frame-ancestors. A page with
 * no meta policy (an app's own page) gets only the framing and sniffing rules.
 */
export function pageHeaders(html: string): Record<string, string> {
  const meta = META_POLICY.exec(html)?.[1];
  const policy = meta === undefined ? '' : decodeAttribute(meta).trim().replace(/;?$/, '; ');
  return {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-cache',
    'content-security-policy': `${policy}frame-ancestors 'none'`,
    'x-frame-options': 'DENY',
    'x-content-type-options': 'nosniff',
  };
}

export function encodeAttribute(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
}

function decodeAttribute(value: string): string {
  return value.replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&#39;/g, "'").replace(/&amp;/g, '&');
}
