/** What the figures were measured on, saved with them. */
import { execFileSync } from 'node:child_process';
import { cpus, freemem, loadavg, release, totalmem, type as osType } from 'node:os';

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryBytes: number;
  freeMemoryBytes: number;
  node: string;
  os: string;
  /** The soft limit on open files, which caps the idle-connection scenario. */
  openFileLimit: number | null;
  /** 1-minute load average when the run started: other work on the machine makes absolute figures noisy. */
  loadAverage: number;
}

export function machineInfo(): MachineInfo {
  const processors = cpus();
  return {
    cpuModel: processors[0]?.model.trim() ?? 'unknown',
    cores: processors.length,
    memoryBytes: totalmem(),
    freeMemoryBytes: freemem(),
    node: process.version,
    os: `${osType()} ${release()} ${process.arch}`,
    openFileLimit: openFileLimit(),
    loadAverage: Math.round(loadavg()[0]! * 100) / 100,
  };
}

/** Children inherit this limit; `ulimit -n` in a shell reads it. */
export function openFileLimit(): number | null {
  try {
    const value = execFileSync('bash', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim();
    return value === 'unlimited' ? Number.POSITIVE_INFINITY : Number(value);
  } catch {
    return null;
  }
}
