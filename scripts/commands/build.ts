import { buildAll } from '../build.js';
import { parseFlags, type Command } from '../cli-args.js';

export const buildCommand: Command = {
  name: 'build',
  summary: 'bundle every target into dist/ (dist/cloudbase.zip, ...)',
  help: `Usage: cloudsocket build [--out DIR]

Bundles each target into one file that needs no node_modules, and zips it:
  dist/cloudbase/       the CloudBase function folder (scf_bootstrap, index.mjs, public/)
  dist/cloudbase.zip    the same, ready to upload
  dist/aws/*.mjs        the Lambda handlers (connect, message, disconnect, welcome)
  dist/aws/lambda.zip   those four files, the code of every function in infra/aws/template.yaml

Options:
  --out DIR    write to DIR instead of dist/
  -h, --help   show this help`,
  async run(argv) {
    const { values } = parseFlags('build', argv, { out: { type: 'string' } });
    if (values.help) {
      console.log(buildCommand.help);
      return 0;
    }
    await buildAll(values.out, (line) => console.log(line));
    return 0;
  },
};
