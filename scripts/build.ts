/**
 * `cloudsocket build`: bundles a project's app with each target's adapter
 * into one file per function that runs with no node_modules beside it, and
 * zips it the way its platform expects. The entries are generated here, so a
 * project holds nothing but its app and its config.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chmod, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative } from 'node:path';
import { build as esbuild, type BuildOptions, type Metafile, type Plugin } from 'esbuild';
import yazl from 'yazl';
import { cloudbasercFor, awsTemplateFor } from './infra.js';
import { builtInModule, packageRoot, selfResolvePlugin } from './package-root.js';
import { BUILD_MARKER, OutputFileNotOursError, OutputFolderNotOursError } from './build-errors.js';
import { loadPage } from './page.js';
import { resolveProject, type Project } from './project.js';

/** The project of a folder without a config file: the built-in chat, built into `outDir`. */
export function builtInProject(outDir?: string): Project {
  const project = resolveProject(process.cwd(), undefined, {});
  return outDir ? { ...project, outDir } : project;
}

/** ESM bundles still meet CommonJS `require` inside dependencies (ws); give them one. */
const REQUIRE_SHIM = "import { createRequire as __cloudsocketCreateRequire } from 'node:module'; const require = __cloudsocketCreateRequire(import.meta.url);";

export const BUNDLE_DEFAULTS: BuildOptions = {
  bundle: true,
  // A stack trace names the app's own source lines (scf_bootstrap and the template turn source maps on).
  sourcemap: 'linked',
  sourcesContent: false,
  platform: 'node',
  format: 'esm',
  // node18 is the oldest runtime scf_bootstrap may pick on CloudBase.
  target: 'node18',
  minify: true,
  keepNames: true,
  legalComments: 'none',
  banner: { js: REQUIRE_SHIM },
  // ws probes these optional native add-ons inside try/catch; without them it uses JS.
  external: ['bufferutil', 'utf-8-validate'],
  logLevel: 'silent',
};

export interface ZipEntry {
  /** Path inside the zip. */
  name: string;
  /** File on disk. */
  source: string;
  /** Unix mode inside the zip, e.g. 0o755. */
  mode: number;
}

export async function writeZip(zipPath: string, entries: readonly ZipEntry[]): Promise<void> {
  const zip = new yazl.ZipFile();
  // A fixed date keeps the zip byte-identical across builds of the same sources into one folder (it keeps their resume secret).
  const mtime = new Date('2020-01-01T00:00:00Z');
  for (const entry of entries) {
    zip.addBuffer(await readFile(entry.source), entry.name, { mode: 0o100000 | entry.mode, mtime });
  }
  zip.end();
  await new Promise<void>((resolve, reject) => {
    zip.outputStream.pipe(createWriteStream(zipPath)).on('close', resolve).on('error', reject);
  });
}

export interface CloudbaseArtifact {
  /** dist/cloudbase: the function's folder, runnable as is. */
  directory: string;
  /** dist/cloudbase.zip: the same folder, zipped for upload. */
  zip: string;
  /** Every source file the bundle was made from. */
  inputs: string[];
}

const ENTRY_NAMESPACE = 'cloudsocket-entry';

/** Optional peer dependencies: bundled when the project has them installed, left out (and loaded by nothing) when not. */
const OPTIONAL_PEERS = ['@cloudbase/node-sdk'];

function optionalPeers(project: Project): Plugin {
  const requireFromProject = createRequire(join(project.root, 'package.json'));
  return {
    name: 'cloudsocket-optional-peers',
    setup(build) {
      const filter = new RegExp(`^(${OPTIONAL_PEERS.map((name) => name.replace(/[/.]/g, '\\$&')).join('|')})$`);
      build.onResolve({ filter }, (args) => {
        try {
          requireFromProject.resolve(args.path);
          return undefined;
        } catch {
          // The feature that imports it reports the missing package when it is used, not at build time.
          return { path: args.path, external: true };
        }
      });
    },
  };
}

/**
 * Resolves `cloudsocket-entry:NAME` to the generated entry of one function:
 * the project's app module handed to an adapter factory.
 */
function generatedEntries(project: Project, entries: Record<string, (app: string, shown: string) => string>): Plugin {
  return {
    name: 'cloudsocket-entries',
    setup(build) {
      build.onResolve({ filter: /^cloudsocket-entry:/ }, (args) => ({ path: args.path.slice(ENTRY_NAMESPACE.length + 1), namespace: ENTRY_NAMESPACE }));
      build.onLoad({ filter: /.*/, namespace: ENTRY_NAMESPACE }, (args) => {
        const make = entries[args.path];
        if (!make) return { errors: [{ text: `no generated entry "${args.path}"` }] };
        return { contents: make(JSON.stringify(project.appModule), JSON.stringify(appModuleShown(project))), resolveDir: project.root, loader: 'js' };
      });
    },
  };
}

/**
 * How the app module is named in the bundle's own error message: from the
 * project's root, so a bundle carries no path of the machine that built it
 * and two checkouts of one project build the same bytes.
 */
function appModuleShown(project: Project): string {
  const fromRoot = relative(project.root, project.appModule);
  return fromRoot.startsWith('..') || isAbsolute(fromRoot) ? basename(project.appModule) : fromRoot;
}

const CLOUDBASE_ENTRY = (app: string, shown: string) => `import * as appModule from ${app};
import { appFromModule } from 'cloudsocket';
import { startCloudbaseFunction } from 'cloudsocket/cloudbase';
await startCloudbaseFunction({ app: appFromModule(appModule, ${shown}) });
`;

// Each entry imports its own handler's factory only, so its bundle holds what that handler uses.
const awsEntry = (handler: string) => (app: string, shown: string) => `import * as appModule from ${app};
import { appFromModule } from 'cloudsocket';
import { ${handler}Handler } from 'cloudsocket/aws';
export const handler = ${handler}Handler(appFromModule(appModule, ${shown}));
`;

/**
 * Where the resume secret of an output folder's builds is kept. Made on the
 * first build there and used by the next ones, so every instance of a build
 * shares it and rebuilding unchanged sources gives the same bytes: a
 * redeploy of them still changes nothing. RESUME_SECRET, where the function
 * runs, wins over it.
 */
const RESUME_SECRET_FILE = '.resume-secret';
const SECRET_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/** The esbuild `define` that writes the folder's resume secret into a bundle (shared/resume-token.ts reads it). */
export async function resumeSecretDefine(out: string): Promise<Record<string, string>> {
  const path = join(out, RESUME_SECRET_FILE);
  const kept = async () => (await readFile(path, 'utf8').catch(() => '')).trim();
  let secret = await kept();
  if (!SECRET_PATTERN.test(secret)) {
    await mkdir(out, { recursive: true });
    const made = randomBytes(32).toString('base64url');
    // Where there is none yet, only if still none: of two builds starting together, both use the one written first.
    // A file that holds something else is replaced.
    await writeFile(path, `${made}\n`, { mode: 0o600, flag: secret === '' ? 'wx' : 'w' }).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
    });
    secret = await kept();
  }
  return { __CLOUDSOCKET_RESUME_SECRET__: JSON.stringify(secret) };
}

/**
 * The AWS SDK's packages as ES modules, which esbuild can tree-shake: most
 * name their CommonJS build in `main` and the ES one in `module`, and for
 * Node esbuild takes `main` first. Only for these packages, as another
 * package's `module` may be built for browsers. Those with an `exports` map
 * are left to it. And the default credential chain becomes the environment
 * alone, where Lambda puts a function's credentials
 * (functions/aws/environment-credentials.ts). Together they take the
 * message handler from 756 KB to 296 KB.
 */
function awsSdkAsEsm(): Plugin {
  return {
    name: 'cloudsocket-aws-sdk-esm',
    setup(build) {
      const external = build.initialOptions.external ?? [];
      const isExternal = (path: string) => external.some((pattern) => pattern === path || (pattern.endsWith('*') && path.startsWith(pattern.slice(0, -1))));
      build.onResolve({ filter: /^@(aws-sdk|smithy)\/[^/]+$/ }, (args) => {
        if (isExternal(args.path)) return undefined;
        if (args.path === '@aws-sdk/credential-provider-node') return { path: builtInModule('functions/aws/environment-credentials') };
        let manifestPath: string;
        try {
          manifestPath = createRequire(join(args.resolveDir, 'index.js')).resolve(`${args.path}/package.json`);
        } catch {
          return undefined;
        }
        const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { module?: string; exports?: unknown };
        if (manifest.exports !== undefined || typeof manifest.module !== 'string') return undefined;
        return { path: join(dirname(manifestPath), manifest.module) };
      });
    },
  };
}

/**
 * Esbuild options that bundle `project`'s app into the AWS handlers; also
 * used by the cold-start bench, which needs no `define` (without one, each
 * process makes its own resume secret).
 */
export function awsBundleOptions(project: Project, define?: Record<string, string>): BuildOptions {
  return {
    ...BUNDLE_DEFAULTS,
    ...(define ? { define } : {}),
    entryPoints: AWS_HANDLERS.map((name) => ({ in: `${ENTRY_NAMESPACE}:${name}`, out: name })),
    outExtension: { '.js': '.mjs' },
    plugins: [
      selfResolvePlugin(),
      awsSdkAsEsm(),
      optionalPeers(project),
      generatedEntries(project, Object.fromEntries(AWS_HANDLERS.map((name) => [name, awsEntry(name)]))),
    ],
    metafile: true,
  };
}

export async function buildCloudbase(outDir?: string, project: Project = builtInProject(outDir)): Promise<CloudbaseArtifact> {
  const out = outDir ?? project.outDir;
  const directory = join(out, 'cloudbase');
  await refuseForeignFiles(directory, cloudbaseSideFiles(out));
  await replaceOwnFolder(directory, 'cloudbase');

  const result = await esbuild({
    ...BUNDLE_DEFAULTS,
    define: await resumeSecretDefine(out),
    entryPoints: [`${ENTRY_NAMESPACE}:cloudbase`],
    outfile: join(directory, 'index.mjs'),
    plugins: [selfResolvePlugin(), optionalPeers(project), generatedEntries(project, { cloudbase: CLOUDBASE_ENTRY })],
    metafile: true,
  });
  const files: ZipEntry[] = [
    { name: 'scf_bootstrap', source: join(directory, 'scf_bootstrap'), mode: 0o755 },
    { name: 'index.mjs', source: join(directory, 'index.mjs'), mode: 0o644 },
    { name: 'index.mjs.map', source: join(directory, 'index.mjs.map'), mode: 0o644 },
  ];
  if (project.page !== false) {
    const page = project.page === 'chat' ? await loadPage() : await readFile(project.page, 'utf8');
    await mkdir(join(directory, 'public'));
    await writeFile(join(directory, 'public/index.html'), page);
    files.push({ name: 'public/index.html', source: join(directory, 'public/index.html'), mode: 0o644 });
  }
  // CloudBase runs scf_bootstrap with bash; CRLF endings would break the shebang.
  const bootstrap = (await readFile(join(packageRoot, 'functions/cloudbase/scf_bootstrap'), 'utf8')).replace(/\r\n/g, '\n');
  await writeFile(join(directory, 'scf_bootstrap'), bootstrap);
  await chmod(join(directory, 'scf_bootstrap'), 0o755);
  await writeFile(join(out, 'cloudbaserc.json'), JSON.stringify(cloudbasercFor(project), null, 2) + '\n');

  const zip = join(out, 'cloudbase.zip');
  await writeZip(zip, files);
  return { directory, zip, inputs: sourceInputs(project, result.metafile) };
}

/** The Lambda handlers; the template's Handler strings are `<name>.handler`. */
export const AWS_HANDLERS = ['connect', 'message', 'disconnect', 'welcome'] as const;

export interface AwsArtifact {
  /** dist/aws: one self-contained .mjs per handler, and the stack's template.yaml. */
  directory: string;
  /** dist/aws/lambda.zip: the handlers at the zip's root, the code of every function in the template. */
  zip: string;
  /** dist/aws/template.yaml: the CloudFormation template deploy and the emulator use. */
  template: string;
  inputs: string[];
}

export async function buildAws(outDir?: string, project: Project = builtInProject(outDir)): Promise<AwsArtifact> {
  const out = outDir ?? project.outDir;
  const directory = join(out, 'aws');
  await replaceOwnFolder(directory, 'aws');
  // No code splitting: each function loads one file, and the zip holds exactly the handlers.
  const result = await esbuild({ ...awsBundleOptions(project, await resumeSecretDefine(out)), outdir: directory });
  const template = join(directory, 'template.yaml');
  await writeFile(template, await awsTemplateFor(project));
  const zip = join(directory, 'lambda.zip');
  await writeZip(
    zip,
    AWS_HANDLERS.flatMap((name) => [
      { name: `${name}.mjs`, source: join(directory, `${name}.mjs`), mode: 0o644 },
      { name: `${name}.mjs.map`, source: join(directory, `${name}.mjs.map`), mode: 0o644 },
    ]),
  );
  return { directory, zip, template, inputs: sourceInputs(project, result.metafile) };
}

const OUTPUT_FOLDERS = ['cloudbase', 'aws'] as const;
type OutputFolder = (typeof OUTPUT_FOLDERS)[number];

/**
 * What builds before the marker (BUILD_MARKER) left in each folder, file for
 * file. A folder that holds exactly these, and for CloudBase our own
 * scf_bootstrap, is taken for build's own; anything more and it is not.
 */
const UNMARKED_OUTPUT: Record<OutputFolder, string[]> = {
  cloudbase: ['scf_bootstrap', 'index.mjs', 'index.mjs.map'],
  aws: [...AWS_HANDLERS.flatMap((name) => [`${name}.mjs`, `${name}.mjs.map`]), 'lambda.zip', 'template.yaml'],
};
const OWN_BOOTSTRAP_COMMENT = '\n# Starts the cloudsocket CloudBase HTTP function.';

/** Refuses `directory` unless it is missing or was made by build. */
async function refuseForeignFolder(directory: string, kind: OutputFolder): Promise<void> {
  const found = await stat(directory).catch(() => undefined);
  if (found === undefined) return;
  if (!found.isDirectory() || !(await isOwnFolder(directory, kind))) throw new OutputFolderNotOursError(directory);
}

async function isOwnFolder(directory: string, kind: OutputFolder): Promise<boolean> {
  const entries = await readdir(directory);
  // An empty folder holds nothing to lose.
  if (entries.length === 0 || entries.includes(BUILD_MARKER)) return true;
  const expected = UNMARKED_OUTPUT[kind];
  // The page folder is there only when the project has a page, and then holds the page alone.
  const page = kind === 'cloudbase' && entries.includes('public');
  if (page && (await readdir(join(directory, 'public')).catch(() => [])).join() !== 'index.html') return false;
  const others = entries.filter((name) => !(page && name === 'public'));
  if (others.length !== expected.length || !expected.every((name) => others.includes(name))) return false;
  return kind !== 'cloudbase' || (await readFile(join(directory, 'scf_bootstrap'), 'utf8')).includes(OWN_BOOTSTRAP_COMMENT);
}

/** What the CloudBase build writes beside its folder. */
function cloudbaseSideFiles(out: string): string[] {
  return [join(out, 'cloudbaserc.json'), join(out, 'cloudbase.zip')];
}

/**
 * The files written beside `folder` belong to the build that made it; with no
 * such folder yet, any of them already there is someone else's (a project's
 * own cloudbaserc.json, when the output folder is the project itself).
 */
async function refuseForeignFiles(folder: string, files: string[]): Promise<void> {
  if (await stat(folder).catch(() => undefined)) return;
  for (const file of files) if (await stat(file).catch(() => undefined)) throw new OutputFileNotOursError(file);
}

/** Empties `directory` for a new build, when it is build's own to empty, and marks it so. */
async function replaceOwnFolder(directory: string, kind: OutputFolder): Promise<void> {
  await refuseForeignFolder(directory, kind);
  await rm(directory, { recursive: true, force: true });
  await mkdir(directory, { recursive: true });
  await writeFile(join(directory, BUILD_MARKER), 'Made by `cloudsocket build`, which deletes and rewrites this folder on every build.\n');
}

/** The project's own files among a bundle's inputs (packages excluded): what a watcher watches. */
function sourceInputs(project: Project, metafile: Metafile | undefined): string[] {
  const inputs = Object.keys(metafile?.inputs ?? {})
    .filter((input) => !input.startsWith(`${ENTRY_NAMESPACE}:`) && !input.includes('node_modules/'))
    .map((input) => join(process.cwd(), input));
  return [...new Set([...inputs, ...(project.configPath ? [project.configPath] : []), ...(typeof project.page === 'string' && project.page !== 'chat' ? [project.page] : [])])];
}

const INPUTS_FILE = '.inputs.json';

/** True when an input of the last build is newer than `artifact`, or when either is missing. */
export async function isStale(project: Project, artifact: string): Promise<boolean> {
  const built = await stat(artifact).then((s) => s.mtimeMs, () => -1);
  if (built < 0) return true;
  const inputs = await readFile(join(project.outDir, INPUTS_FILE), 'utf8').then((text) => JSON.parse(text) as string[], () => undefined);
  if (!inputs) return true;
  for (const input of inputs) {
    if ((await stat(input).then((s) => s.mtimeMs, () => Infinity)) > built) return true;
  }
  return false;
}

export interface BuildResult {
  cloudbase: CloudbaseArtifact;
  aws: AwsArtifact;
  /** Every source file either build was made from. */
  inputs: string[];
}

export async function buildAll(project: Project, log: (line: string) => void = () => {}): Promise<BuildResult> {
  // Both before either is replaced: a refused aws/ must not leave cloudbase/ rebuilt alone.
  for (const kind of OUTPUT_FOLDERS) await refuseForeignFolder(join(project.outDir, kind), kind);
  await refuseForeignFiles(join(project.outDir, 'cloudbase'), cloudbaseSideFiles(project.outDir));
  const cloudbase = await buildCloudbase(project.outDir, project);
  log(`built ${relative(process.cwd(), cloudbase.zip) || cloudbase.zip} (${(await stat(cloudbase.zip)).size} bytes)`);
  const aws = await buildAws(project.outDir, project);
  log(`built ${relative(process.cwd(), aws.zip) || aws.zip} (${(await stat(aws.zip)).size} bytes)`);
  const inputs = [...new Set([...cloudbase.inputs, ...aws.inputs])];
  await writeFile(join(project.outDir, INPUTS_FILE), JSON.stringify(inputs));
  return { cloudbase, aws, inputs };
}

