/** The stdout table of a bench run. */
import { BASELINE_LABELS } from './ratios.js';
import type { BroadcastRun } from './broadcast.js';
import type { BenchReport } from './run.js';

type Cell = string | number | null | undefined;

function table(header: string[], rows: Cell[][]): string {
  const text = [header, ...rows.map((row) => row.map(cell))];
  const widths = header.map((_, column) => Math.max(...text.map((row) => row[column]!.length)));
  return text.map((row) => row.map((value, column) => value.padEnd(widths[column]!)).join('  ').trimEnd()).join('\n');
}

function cell(value: Cell): string {
  if (value === null || value === undefined) return 'n/a';
  if (typeof value === 'number') return Number.isInteger(value) ? value.toLocaleString('en-US') : value.toLocaleString('en-US', { maximumFractionDigits: 2 });
  return value;
}

/** The measured columns of a broadcast run, after the ones naming it. */
function runFigures(run: BroadcastRun): Cell[] {
  const cpu = run.cpuMicrosPerDelivery === null ? null : Number(run.cpuMicrosPerDelivery.toFixed(2));
  return [run.deliveredPerSecond, cpu, run.capacityPerCpuSecond, run.p50Ms, run.p99Ms, `${run.received}/${run.expected}`];
}

const times = (value: number | null) => (value === null ? 'n/a' : `${value.toFixed(2)}×`);
const span = (range: [number, number] | null) => (range === null ? '-' : `${range[0].toFixed(2)}-${range[1].toFixed(2)}×`);
const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;

export function formatReport(report: BenchReport): string {
  const { machine } = report;
  const out: string[] = [];
  out.push(
    `cloudsocket bench (${report.mode}), ${report.durationSeconds} s: ${machine.cpuModel}, ${machine.cores} cores, ` +
      `${(machine.memoryBytes / 2 ** 30).toFixed(1)} GiB, Node ${machine.node}, ${machine.os}; ` +
      `load average ${machine.loadAverage} at start, ${report.loadAverageAtEnd} at end`,
  );
  for (const note of report.notes) out.push(`note: ${note}`);

  if (report.broadcast) {
    const offered = [...new Set(report.broadcast.runs.map((run) => run.offeredPerSecond))].map((n) => n.toLocaleString('en-US')).join(', ');
    out.push('', `Broadcast: one room, each message to every member, sender included; offered ${offered} deliveries/s`);
    out.push(
      table(
        ['clients', 'server', 'delivered/s', 'CPU µs/delivery', 'capacity/CPU-s', 'p50 ms', 'p99 ms', 'received/expected'],
        report.broadcast.runs.map((run) => [run.clients, run.server, ...runFigures(run)]),
      ),
    );
    out.push('', 'Ratios, cloudsocket ÷ baseline (capacity: higher is better; latency: lower is better; range: lowest and highest of the rounds, each against the same round)');
    out.push(
      table(
        ['clients', 'vs', 'capacity', 'range', 'p50', 'p99', 'range'],
        report.broadcast.ratios.flatMap((r) =>
          r.baselines.map((b) => [r.clients, BASELINE_LABELS[b.vs], times(b.capacity), span(b.capacityRange), times(b.p50), times(b.p99), span(b.p99Range)]),
        ),
      ),
    );
  }

  if (report.cluster) {
    out.push('', 'One room over 3 processes sharing it through Redis (clients dealt round-robin), against one process');
    out.push(
      table(
        ['server', 'instances', 'delivered/s', 'CPU µs/delivery', 'capacity/CPU-s', 'p50 ms', 'p99 ms', 'received/expected'],
        report.cluster.runs.map((run) => [run.server === 'socketio' ? 'socketio + redis-adapter' : run.server, run.instances, ...runFigures(run)]),
      ),
    );
    const { capacityVsSocketio, p99VsSingle, capacityVsSingle } = report.cluster.ratios;
    out.push(`Ratios: capacity cloudsocket×3 ÷ Socket.IO+redis-adapter×3 ${times(capacityVsSocketio)}; cloudsocket×3 ÷ ×1: capacity ${times(capacityVsSingle)}, p99 ${times(p99VsSingle)}`);
  }

  if (report.idle) {
    const rounds = report.idle.rounds;
    const rssOverRounds = (server: string) => {
      const values = rounds.filter((run) => run.server === server).map((run) => run.rssBytesPerConnection);
      return values.length < 2 ? '-' : `${kib(Math.min(...values))} - ${kib(Math.max(...values))}`;
    };
    out.push('', `Idle connections (rooms of 10): growth after a full GC ÷ connections; median RSS of ${rounds.length / report.idle.runs.length} round(s)`);
    out.push(
      table(
        ['server', 'connections', 'RSS/conn', 'heap/conn', 'RSS/conn over rounds'],
        report.idle.runs.map((run) => [run.server, run.connections, kib(run.rssBytesPerConnection), kib(run.heapBytesPerConnection), rssOverRounds(run.server)]),
      ),
    );
    out.push(`Ratio cloudsocket ÷ raw ws (idiomatic): RSS ${times(report.idle.ratios.rssVsRawWs)}, heap ${times(report.idle.ratios.heapVsRawWs)}`);
    const { held } = report.idle.ratios;
    if (held) out.push(`Held open: ${held.connections} cloudsocket connections for ${held.ms / 1000} s, ${held.unexpectedCloses} closed meanwhile`);
  }

  if (report.hostile) {
    out.push('', 'Hostile input: malformed inputs per target beside a chatting pair (right answer: the HTTP status or close code it should get, or an error frame)');
    out.push(
      table(
        ['target', 'kind', 'sent', 'right', 'wrong (examples)'],
        report.hostile.flatMap((run) => run.categories.map((c) => [run.target, c.category, c.sent, c.rightAnswers, c.wrong.join('; ') || '-'])),
      ),
    );
    out.push(
      table(
        ['target', 'up after', 'sockets before→after', 'all fds', 'room before→after', 'bystanders received/sent', 'seconds'],
        report.hostile.map((run) => [run.target, run.alive ? 'yes' : 'NO', `${run.socketsBefore}→${run.socketsAfter}`, `${run.fdsBefore}→${run.fdsAfter}`, `${run.roomBefore}→${run.roomAfter}`, `${run.bystanderReceived}/${run.bystanderSent}`, run.durationSeconds]),
      ),
    );
  }

  if (report.aws) {
    out.push('', 'AWS target through the emulator and dynalite, per chat message (counted at the servers)');
    out.push(
      table(
        ['room', 'DynamoDB', 'by operation', '@connections', 'Lambda invokes', 'fan-out median ms (warm)', 'fan-out max ms (warm)', 'first messages: median, max ms', 'emulator CPU ms', 'CPU µs per @connections call', 'µs per extra call (from the room before)'],
        report.aws.rooms.map((room) => [
          room.roomSize,
          room.dynamoRequestsPerMessage,
          Object.entries(room.dynamoOperationsPerMessage).map(([op, n]) => `${op} ${n}`).join(', '),
          Object.entries(room.managementMethodsPerMessage).map(([method, n]) => `${method} ${n}`).join(', ') || '0',
          room.lambdaInvokesPerMessage,
          room.fanoutMedianMs,
          room.fanoutMaxMs,
          `${room.firstFanoutMedianMs ?? '-'}, ${room.firstFanoutMaxMs ?? '-'}`,
          room.cpuMsPerMessage,
          room.cpuMicrosPerManagementCall ?? '-',
          room.marginalCpuMicrosPerManagementCall ?? '-',
        ]),
      ),
    );
    const { resume } = report.aws;
    const operations = (tally: { dynamoOperations: Record<string, number> }) => Object.entries(tally.dynamoOperations).map(([op, n]) => `${op} ${n}`).join(', ');
    out.push('', 'AWS room log through the emulator: chat messages in a room of 12, and resumes from the handshake to `resumed` (DynamoDB requests)');
    out.push(
      table(
        ['what', 'DynamoDB', 'by operation', '@connections', 'Lambda invokes'],
        [
          [`per chat message, over ${resume.messages} (${resume.slotsStarted} starting a slot)`, resume.perMessage.dynamoRequests, operations(resume.perMessage), resume.perMessage.managementCalls, resume.perMessage.lambdaInvokes],
          [`a resume after 2 chats (${resume.shortResume.replayed} replayed)`, resume.shortResume.dynamoRequests, operations(resume.shortResume), resume.shortResume.managementCalls, resume.shortResume.lambdaInvokes],
          [`a resume after ${resume.messages} chats (${resume.longResume.replayed} replayed)`, resume.longResume.dynamoRequests, operations(resume.longResume), resume.longResume.managementCalls, resume.longResume.lambdaInvokes],
        ],
      ),
    );
    const { cost } = report.aws;
    if (cost) {
      const dollars = (value: number) => `$${value.toFixed(2)}`;
      out.push(
        '',
        `AWS: what a chat message in a room of ${cost.roomSize} would be billed, per million chat messages (the emulator's cost meter over ${cost.messages} messages; ` +
          `${cost.prices.region} list prices read ${cost.prices.date}, cited in scripts/emulator/cost-meter.ts; connection minutes left out)`,
      );
      out.push(
        table(
          ['billed', 'per chat message', 'per million chat messages'],
          [
            ['API Gateway messages', `${cost.perMessage.messageUnits} (32 KB units, in and out)`, dollars(cost.perMillionMessages.apiGateway)],
            ['Lambda', `${cost.perMessage.lambdaRequests} requests, ${cost.perMessage.gbSeconds} GB-s`, dollars(cost.perMillionMessages.lambda)],
            ['DynamoDB', `${cost.perMessage.readUnits} read units, ${cost.perMessage.writeUnits} write units`, dollars(cost.perMillionMessages.dynamodb)],
            ['total', '', dollars(cost.perMillionMessages.total)],
          ],
        ),
      );
    }
    out.push('', 'AWS handlers: size and cold-start import of message.mjs in a fresh process');
    out.push(
      table(
        ['variant', 'message.mjs', '4 handlers', 'import median ms', 'fastest, slowest ms', 'build'],
        report.aws.coldStart.map((run) => [
          run.variant,
          kib(run.messageBytes),
          kib(run.totalBytes),
          run.importMedianMs,
          `${Math.min(...run.importSamplesMs)}, ${Math.max(...run.importSamplesMs)}`,
          run.description,
        ]),
      ),
    );
  }

  if (report.awsLog) {
    out.push('', `AWS room log against dynalite, per append of a ${report.awsLog[0]?.frameBytes ?? '?'}-byte chat frame (capacity units as dynalite counts them by DynamoDB's rules)`);
    out.push(
      table(
        ['layout', 'requests', 'most for one', 'write units', 'replay of 20: requests', 'read units', 'replay of 1000: requests', 'read units'],
        report.awsLog.map((run) => [
          run.layout,
          run.requestsPerAppend,
          run.maxRequestsPerAppend,
          run.writeUnitsPerAppend,
          run.shortReplay.requests,
          run.shortReplay.readUnits,
          run.fullReplay.requests,
          run.fullReplay.readUnits,
        ]),
      ),
    );
  }

  if (report.awsChurn) {
    const { join, broadcast, churn } = report.awsChurn;
    out.push('', 'AWS target under a crowd and under churn, through the emulator');
    out.push(
      table(
        ['measure', 'figure'],
        [
          ['clients joining one room', `${join.connected} (${join.failed} failed) in ${join.seconds.toFixed(1)} s: ${join.perSecond} connections/s`],
          ['broadcasts to that room', `${broadcast.messages} to ${broadcast.members}: ${broadcast.exactlyOnce} exactly once, ${broadcast.missing} missing, ${broadcast.duplicated} duplicated`],
          ['emulator RSS growth, crowd joined', `${report.awsChurn.emulatorRssGrowthMiB} MiB`],
          ['churn beside 2 live clients', `${churn.churned} churned, ${churn.churnFailed} stuck; live: ${churn.liveReceived}/${churn.liveExpected} delivered, ${churn.liveDuplicated} duplicated`],
          ['newcomers during the churn', `${churn.probes}: welcome median ${churn.welcomeMedianMs ?? 'n/a'} ms, max ${churn.welcomeMaxMs ?? 'n/a'} ms, ${churn.probeFailures} never welcomed`],
          ['registry entries after the churn', report.awsChurn.registryEntriesAfter],
          ['function errors logged', Object.entries(report.awsChurn.functionErrors).map(([event, n]) => `${event} ${n}`).join(', ') || 'none'],
          ['emulator CPU, crowd joining', `${report.awsChurn.emulatorCpuSeconds.join} s (${Math.round((report.awsChurn.emulatorCpuSeconds.join / Math.max(1, join.connected)) * 1000)} ms a join)`],
          ['emulator CPU, churn', `${report.awsChurn.emulatorCpuSeconds.churn} s`],
        ],
      ),
    );
    for (const [phase, stats] of Object.entries(report.awsChurn.functionStats)) {
      out.push('', `Lambda functions in the emulator, ${phase === 'join' ? 'crowd joining' : 'churn'}`);
      out.push(
        table(
          ['function', 'invocations', 'cold starts', 'waited mean / max ms', 'ran mean / max ms', 'most queued', 'abandoned', 'expired'],
          Object.entries(stats).map(([name, f]) => [
            name,
            f.invocations,
            f.coldStarts,
            `${f.queueWaitMs.mean} / ${f.queueWaitMs.max}`,
            `${f.durationMs.mean} / ${f.durationMs.max}`,
            f.peakQueued,
            f.abandoned,
            f.expired,
          ]),
        ),
      );
    }
  }

  const failures = Object.entries(report.failures);
  if (failures.length > 0) {
    out.push('', 'Not run:');
    for (const [scenario, reason] of failures) out.push(`  ${scenario}: ${reason}`);
  }
  if (report.targets.length > 0) {
    out.push('', 'Targets');
    for (const check of report.targets) out.push(`  ${check.met ? 'met    ' : 'NOT MET'}  ${check.target}: ${check.measured}`);
  }
  return out.join('\n');
}
