/**
 * The browser chat page, as one self-contained HTML document. Every server
 * that shows the page (the CloudBase target, the AWS emulator, the build)
 * takes it from here.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { projectRoot } from './build.js';

export interface PageOptions {
  /** The WebSocket URL the page's server field starts with; absent, the page derives it from its own address. */
  defaultUrl?: string;
}

export async function loadPage(options: PageOptions = {}): Promise<string> {
  const html = await readFile(join(projectRoot, 'functions/cloudbase/public/index.html'), 'utf8');
  if (!options.defaultUrl) return html;
  const meta = `<meta name="cloudsocket-url" content="${escapeAttribute(options.defaultUrl)}">`;
  return html.replace('<head>', `<head>\n${meta}`);
}

function escapeAttribute(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
}
