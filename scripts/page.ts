/**
 * The browser chat page, as one self-contained HTML document: clients/page/
 * index.html with its stylesheet and the esbuild bundle of page.ts (and the
 * reconnecting client it imports) inlined, so the page needs no other request
 * and also works opened from disk. Every server that shows the page (the
 * CloudBase target, the AWS emulator, the build) takes it from here.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

export interface PageOptions {
  /** The WebSocket URL the page's server field starts with; absent, the page derives it from its own address. */
  defaultUrl?: string;
}

const pageDir = fileURLToPath(new URL('../clients/page/', import.meta.url));

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
  const meta = `<meta name="cloudsocket-url" content="${escapeAttribute(options.defaultUrl)}">`;
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
  for (const tag of [STYLESHEET_TAG, SCRIPT_TAG]) {
    if (!template.includes(tag)) throw new Error(`clients/page/index.html must contain ${tag}`);
  }
  // Functions as replacements: the bundle is full of `$`, which a replacement string would interpret.
  return template
    .replace(STYLESHEET_TAG, () => `<style>\n${css}</style>`)
    .replace(SCRIPT_TAG, () => `<script>\n${script.replace(/<\/script/gi, '<\\/script')}</script>`);
}

function escapeAttribute(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
}
