/**
 * The browser chat page, as one self-contained HTML document: clients/page/
 * index.html with its stylesheet and the esbuild bundle of page.ts (and the
 * reconnecting client it imports) inlined, so the page needs no other request
 * and also works opened from disk. Every server that shows the page (the
 * CloudBase target, the AWS emulator, the build) takes it from here. Its
 * Content-Security-Policy is written into it here, from the hashes of what
 * was inlined (shared/page-headers.ts).
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { encodeAttribute, pagePolicy } from '../shared/page-headers.js';

export interface PageOptions {
  /** The WebSocket URL the page's server field starts with; absent, the page derives it from its own address. */
  defaultUrl?: string;
}

const pageDir = fileURLToPath(new URL('../clients/page/', import.meta.url));

const CHARSET_TAG = '<meta charset="utf-8">';
const STYLESHEET_TAG = '<link rel="stylesheet" href="page.css">';
const SCRIPT_TAG = '<script src="page.js"></script>';

/** Built once per process: bundling takes a moment and the sources do not change under a running server. */
let built: Promise<string> | undefined;

export async function loadPage(options: PageOptions = {}): Promise<string> {
  built ??= buildPage().catch((error: unknown) => {
    built = undefined;
    throw error;
  });
  const html = await built;
  if (!options.defaultUrl) return html;
  const meta = `<meta name="cloudsocket-url" content="${encodeAttribute(options.defaultUrl)}">`;
  return html.replace('<head>', () => `<head>\n${meta}`);
}

async function buildPage(): Promise<string> {
  const [template, css, bundle] = await Promise.all([
    readFile(join(pageDir, 'index.html'), 'utf8'),
    readFile(join(pageDir, 'page.css'), 'utf8'),
    build({
      // page.ts in the sources; compiled to page.js in the installed package.
      entryPoints: [existsSync(join(pageDir, 'page.ts')) ? join(pageDir, 'page.ts') : join(pageDir, 'page.js')],
      bundle: true,
      write: false,
      platform: 'browser',
      format: 'iife',
      // Every browser of the last few years runs ES2020; the page needs nothing newer.
      target: 'es2020',
      minify: true,
      legalComments: 'none',
      logLevel: 'silent',
    }),
  ]);
  const script = bundle.outputFiles[0]?.text;
  if (script === undefined) throw new Error('esbuild produced no bundle for clients/page/page.ts');
  for (const tag of [CHARSET_TAG, STYLESHEET_TAG, SCRIPT_TAG]) {
    if (!template.includes(tag)) throw new Error(`clients/page/index.html must contain ${tag}`);
  }
  // The hashes cover the exact text between the tags, so it is fixed before they are taken.
  const style = `\n${css}`;
  const inlineScript = `\n${script.replace(/<\/script/gi, '<\\/script')}`;
  const policy = pagePolicy({ script: sha256Source(inlineScript), style: sha256Source(style) });
  // Before the stylesheet and script, which a policy met later would not cover.
  const policyTag = `<meta http-equiv="Content-Security-Policy" content="${encodeAttribute(policy)}">`;
  // Functions as replacements: the bundle is full of `$`, which a replacement string would interpret.
  return template
    .replace(CHARSET_TAG, () => `${CHARSET_TAG}\n${policyTag}`)
    .replace(STYLESHEET_TAG, () => `<style>${style}</style>`)
    .replace(SCRIPT_TAG, () => `<script>${inlineScript}</script>`);
}

function sha256Source(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}
