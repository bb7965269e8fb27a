import { join, relative, resolve } from 'node:path';
import { formatReport } from '../../bench/report.js';
import { FULL_PLAN, QUICK_PLAN, SCENARIOS, type ScenarioName } from '../../bench/plan.js';
import { runBench, writeReport } from '../../bench/run.js';
import { packageRoot as projectRoot } from '../package-root.js';
import { integerFlag, parseFlags, UsageError, type Command } from '../cli-args.js';

export const benchCommand: Command = {
  name: 'bench',
  summary: 'measure broadcast throughput, latency and memory against the Node floor, ws and Socket.IO, and the AWS cost per message',
  help: `Usage: cloudsocket bench [--quick] [--only NAME[,NAME]] [--out FILE] [--idle N] [--profile DIR]

Builds the CloudBase artifact and runs it (through its scf_bootstrap) side by
side with baselines doing the same room broadcast: the floor (each message
framed once, one \`socket.write\` per recipient), \`ws\` with each message
framed once, \`ws\` written the idiomatic way (\`send\` per member) and
Socket.IO 4; each alone on the machine, with the load generated from
separate processes. Prints a table with the ratios and writes the figures
with the machine's description as JSON.

Scenarios (all by default):
  broadcast   one room of 100 and 1000 clients: deliveries/s, p50/p99 latency,
              server CPU per delivery, against each baseline
  cluster     the room of 100 over 3 processes sharing it through a local
              redis-server: cloudsocket (REDIS_URL) against Socket.IO with
              @socket.io/redis-adapter, and against one cloudsocket process
  idle        10,000 idle connections: RSS and V8 heap per connection, against raw ws
  aws         the AWS target through the emulator and dynalite: DynamoDB and
              @connections requests per chat message (rooms of 10, 100, 1000),
              fan-out time (a room's first messages, and warm ones after
              more that are not measured), and the handlers' size and
              cold-start import time
  aws-churn   the AWS target through the emulator: 1,000 clients joining one
              room, 10 broadcasts to it, 3,000 connections churning in 30 s
              beside 2 live clients, newcomers' time to welcome, registry
              entries left afterwards

Options:
  --quick           smaller rooms, fewer connections, shorter runs, one round
  --only NAME       run only these scenarios (comma-separated: ${SCENARIOS.join(', ')})
  --out FILE        where the JSON goes (default bench/results/latest.json)
  --idle N          idle connections (default 10000, quick 5000)
  --profile DIR     write each broadcast server's CPU profile (.cpuprofile) to DIR
  -h, --help        show this help

Absolute figures depend on the machine and whatever else runs on it; the
ratios are measured in one run, side by side, and are what to compare.`,
  async run(argv) {
    const { values } = parseFlags('bench', argv, {
      quick: { type: 'boolean' },
      only: { type: 'string' },
      out: { type: 'string' },
      idle: { type: 'string' },
      profile: { type: 'string' },
    });
    if (values.help) {
      console.log(benchCommand.help);
      return 0;
    }
    const base = values.quick ? QUICK_PLAN : FULL_PLAN;
    const plan = { ...base, idleConnections: integerFlag('bench', 'idle', values.idle, base.idleConnections, 1, 1_000_000) };
    const scenarios = values.only === undefined ? SCENARIOS : parseScenarios(values.only);
    const out = values.out === undefined ? join(projectRoot, 'bench/results/latest.json') : resolve(values.out);
    // The bench's own DynamoDB client would print the SDK's Node version notice in the middle of the table.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

    const report = await runBench({
      plan,
      scenarios,
      ...(values.profile ? { profileDir: resolve(values.profile) } : {}),
      progress: (line) => process.stderr.write(`${line}\n`),
    });
    await writeReport(report, out);
    console.log(formatReport(report));
    console.log(`\nfigures written to ${relative(process.cwd(), out) || out}`);
    return Object.keys(report.failures).length > 0 ? 1 : 0;
  },
};

function parseScenarios(list: string): ScenarioName[] {
  const names = list.split(',').map((name) => name.trim()).filter((name) => name !== '');
  for (const name of names) {
    if (!(SCENARIOS as readonly string[]).includes(name)) {
      throw new UsageError(`bench: --only takes ${SCENARIOS.join(', ')} (comma-separated), got ${JSON.stringify(name)}`);
    }
  }
  if (names.length === 0) throw new UsageError(`bench: --only needs at least one of ${SCENARIOS.join(', ')}`);
  return names as ScenarioName[];
}
