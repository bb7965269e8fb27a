/**
 * Scenario 3, second half: the Lambda handlers' size and cold-start import
 * time (a fresh Node process importing the bundle, as a new Lambda container
 * does), as shipped (minified, AWS SDK bundled, imported as the template deploys
 * it), and the same bundle imported with `NODE_OPTIONS=--enable-source-maps`
 * (Node then reads the map at import; the shipped handlers map a stack only
 * when they log it), against the same handlers bundled
 * unminified and with the AWS SDK left external (resolved from node_modules
 * at import time, as a Lambda layer or the runtime's own SDK would be), and
 * against the DynamoDB client alone with the commands the message handler
 * sends, bundled the same way: the part of the import no handler can avoid
 * while it keeps the SDK's client.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, stat, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { build as esbuild, type BuildOptions, type Metafile } from 'esbuild';
import { resource, loadTemplate } from '../scripts/aws-template.js';
import { AWS_HANDLERS, awsBundleOptions, BUNDLE_DEFAULTS, buildAws, builtInProject } from '../scripts/build.js';
import { packageRoot as projectRoot } from '../scripts/package-root.js';

const run = promisify(execFile);

export type HandlerVariant = 'shipped' | 'shipped-node-source-maps' | 'unminified' | 'sdk-external' | 'dynamodb-client-alone';

export interface ColdStartRun {
  variant: HandlerVariant;
  description: string;
  /** dist/aws/message.mjs of this variant. */
  messageBytes: number;
  /** All four handlers. */
  totalBytes: number;
  /** Median import time of message.mjs in a fresh process, and every sample. */
  importMedianMs: number;
  importSamplesMs: number[];
}

const DESCRIPTIONS: Record<HandlerVariant, string> = {
  shipped: 'minified, AWS SDK bundled (what `cloudsocket build` ships)',
  'shipped-node-source-maps': 'the same, with NODE_OPTIONS=--enable-source-maps (Node maps every stack itself)',
  unminified: 'unminified, AWS SDK bundled',
  'sdk-external': 'minified, AWS SDK external (loaded from node_modules, not counted in the size)',
  'dynamodb-client-alone': "shipped's options, only DynamoDBClient and the commands message.mjs sends (one file, no handler)",
};

export interface BuiltVariants {
  /** dist/aws of the shipped build, for the emulator. */
  shippedDirectory: string;
  directories: Record<HandlerVariant, string>;
  /** NODE_OPTIONS each variant is imported with ('' for none). */
  nodeOptions: Record<HandlerVariant, string>;
  remove(): Promise<void>;
}

export async function buildVariants(): Promise<BuiltVariants> {
  const out = await mkdtemp(join(tmpdir(), 'cloudsocket-bench-aws-'));
  const chat = awsBundleOptions(builtInProject());
  const variant = async (name: HandlerVariant, options: BuildOptions) => {
    const directory = join(out, name);
    const { metafile } = await esbuild({ ...chat, outdir: directory, ...options });
    return { directory, metafile };
  };
  const [{ directory: shipped, template }, unminified, external] = await Promise.all([
    buildAws(join(out, 'shipped-dist')),
    variant('unminified', { minify: false }),
    variant('sdk-external', { external: [...(BUNDLE_DEFAULTS.external ?? []), '@aws-sdk/*'] }),
  ]);
  const clientAlone = join(out, 'dynamodb-client-alone');
  await esbuild({
    ...chat,
    entryPoints: undefined,
    stdin: { contents: dynamoDbClientEntry(messageCommands(unminified.metafile!)), resolveDir: projectRoot, loader: 'js' },
    outfile: join(clientAlone, 'message.mjs'),
  });
  // Bare imports of the external variant resolve upwards from its folder.
  await symlink(join(projectRoot, 'node_modules'), join(out, 'node_modules'), 'dir');
  const variables = (resource(await loadTemplate(template), 'MessageFunction').Properties as { Environment?: { Variables?: Record<string, unknown> } }).Environment?.Variables;
  const deployedOptions = typeof variables?.NODE_OPTIONS === 'string' ? variables.NODE_OPTIONS : '';
  return {
    shippedDirectory: shipped,
    directories: { shipped, 'shipped-node-source-maps': shipped, unminified: unminified.directory, 'sdk-external': external.directory, 'dynamodb-client-alone': clientAlone },
    nodeOptions: { shipped: deployedOptions, 'shipped-node-source-maps': '--enable-source-maps', unminified: '', 'sdk-external': '', 'dynamodb-client-alone': '' },
    remove: () => rm(out, { recursive: true, force: true }),
  };
}

/** The DynamoDB commands bundled into message.mjs, by their modules' names (dist-es/commands/GetItemCommand.js). */
function messageCommands(metafile: Metafile): string[] {
  const output = Object.entries(metafile.outputs).find(([file]) => file.endsWith('/message.mjs'))![1];
  return Object.keys(output.inputs)
    .map((input) => /@aws-sdk\/client-dynamodb\/dist-es\/commands\/(\w+Command)\.js$/.exec(input)?.[1])
    .filter((name): name is string => name !== undefined)
    .sort();
}

function dynamoDbClientEntry(commands: readonly string[]): string {
  const names = ['DynamoDBClient', ...commands];
  return `import { ${names.join(', ')} } from '@aws-sdk/client-dynamodb';\nexport const used = [${names.join(', ')}];\n`;
}

/** Samples are taken round-robin over the variants so a noisy moment hurts them all alike. */
export async function measureColdStarts(variants: BuiltVariants, samples: number): Promise<ColdStartRun[]> {
  const names = Object.keys(variants.directories) as HandlerVariant[];
  const times = new Map<HandlerVariant, number[]>(names.map((name) => [name, []]));
  for (let round = 0; round < samples; round++) {
    for (const name of names) times.get(name)!.push(await importTime(join(variants.directories[name], 'message.mjs'), variants.nodeOptions[name]));
  }
  return Promise.all(
    names.map(async (name) => {
      // The client alone is one file, message.mjs.
      const files = name === 'dynamodb-client-alone' ? ['message' as const] : AWS_HANDLERS;
      const sizes = await Promise.all(files.map(async (handler) => (await stat(join(variants.directories[name], `${handler}.mjs`))).size));
      const sorted = [...times.get(name)!].sort((a, b) => a - b);
      return {
        variant: name,
        description: DESCRIPTIONS[name],
        messageBytes: sizes[files.indexOf('message')]!,
        totalBytes: sizes.reduce((a, b) => a + b, 0),
        importMedianMs: Math.round(sorted[Math.floor((sorted.length - 1) / 2)]! * 10) / 10,
        importSamplesMs: times.get(name)!.map((ms) => Math.round(ms * 10) / 10),
      };
    }),
  );
}

const IMPORT_SCRIPT = 'const t = performance.now(); await import(process.env.BENCH_IMPORT); process.stdout.write(String(performance.now() - t));';

async function importTime(file: string, nodeOptions: string): Promise<number> {
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', IMPORT_SCRIPT], {
    env: {
      PATH: process.env.PATH ?? '',
      ...(nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}),
      BENCH_IMPORT: pathToFileURL(file).href,
      // What the handler reads at import; the values are never used to reach anything.
      CONNECTIONS_TABLE: 'bench',
      WELCOME_FUNCTION: 'bench-welcome',
      AWS_REGION: 'us-east-1',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
  });
  return Number(stdout);
}
