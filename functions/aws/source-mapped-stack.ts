/**
 * Stack traces that name the app's TypeScript lines, without Node's
 * `--enable-source-maps`. With that flag Node reads each bundle's map and
 * scans the bundle's text for it at import: 5 to 23 ms of every cold start
 * of a 270 KiB handler, as measured (bench/aws-cold-start.ts measures both ways).
 * Here a bundle's map is read the first time one of its errors is logged,
 * once per container, and only frames in files that have a map beside them
 * are rewritten, as Node would write them.
 */
import { readFileSync } from 'node:fs';
import { SourceMap, type SourceMapPayload } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** By the generated file's path; null when it has no readable map. */
const mapsByFile = new Map<string, SourceMap | null>();

function mapBeside(file: string): SourceMap | null {
  let map = mapsByFile.get(file);
  if (map === undefined) {
    try {
      map = new SourceMap(JSON.parse(readFileSync(`${file}.map`, 'utf8')) as SourceMapPayload);
    } catch {
      // No map, or not one: the frame stays as V8 wrote it.
      map = null;
    }
    mapsByFile.set(file, map);
  }
  return map;
}

/** `file:///var/task/message.mjs:1:2345` or `/var/task/message.mjs:1:2345` in a V8 stack frame. */
const FRAME_LOCATION = /((?:file:\/\/)?\/[^\s()]+?\.[cm]?js):(\d+):(\d+)/g;

export function sourceMappedStack(stack: string): string {
  return stack.replace(FRAME_LOCATION, (location: string, fileOrUrl: string, line: string, column: string) => {
    try {
      const file = fileOrUrl.startsWith('file:') ? fileURLToPath(fileOrUrl) : fileOrUrl;
      const origin = mapBeside(file)?.findOrigin(Number(line), Number(column));
      if (!origin || !('fileName' in origin)) return location;
      // The map's sources are relative to the map itself, as Node resolves them.
      const source = new URL(origin.fileName, pathToFileURL(`${file}.map`));
      const shown = source.protocol === 'file:' ? fileURLToPath(source) : source.href;
      return `${shown}:${origin.lineNumber}:${origin.columnNumber}`;
    } catch {
      // A location or a map entry that is not a path: logging an error must never fail for its stack.
      return location;
    }
  });
}

/** Node 20.7 and later say whether they map stacks themselves; then the stack is already mapped. */
export function stacksAlreadyMapped(): boolean {
  return (process as { sourceMapsEnabled?: boolean }).sourceMapsEnabled === true;
}
