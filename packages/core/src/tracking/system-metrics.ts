import { execFileSync } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import { cpus, freemem, totalmem } from 'node:os';
import { delimiter, join } from 'node:path';

/**
 * Machine load recorded next to a run's metrics, under `system/` (MLflow's UI groups keys by
 * their prefix): CPU utilisation of the whole machine since the previous sample, this process's
 * resident memory, the machine's memory in use, and per-GPU utilisation and memory when
 * `nvidia-smi` is on PATH.
 */
export const SYSTEM_PREFIX = 'system/';

export interface CpuTimes {
  idle: number;
  total: number;
}

/** Idle and total CPU milliseconds summed over every core since boot. */
export function cpuTimes(list: ReturnType<typeof cpus> = cpus()): CpuTimes {
  let idle = 0;
  let total = 0;
  for (const { times } of list) {
    idle += times.idle;
    total += times.user + times.nice + times.sys + times.idle + times.irq;
  }
  return { idle, total };
}

/** Busy share of the CPU time that passed between two readings, in percent (0 when none passed). */
export function cpuPercentBetween(before: CpuTimes, after: CpuTimes): number {
  const total = after.total - before.total;
  if (total <= 0) return 0;
  return Math.min(100, Math.max(0, (100 * (total - (after.idle - before.idle))) / total));
}

/**
 * `nvidia-smi --query-gpu=utilization.gpu,memory.used,memory.total --format=csv,noheader,nounits`
 * output (one line per GPU) as metrics; fields the driver reports as "[N/A]" are left out.
 */
export function parseNvidiaSmi(csv: string): Record<string, number> {
  const metrics: Record<string, number> = {};
  csv
    .split('\n')
    .filter((line) => line.trim() !== '')
    .forEach((line, gpu) => {
      const [utilization, used, total] = line.split(',').map((field) => Number(field.trim()));
      const key = (name: string) => `${SYSTEM_PREFIX}gpu_${gpu}_${name}`;
      if (Number.isFinite(utilization)) metrics[key('utilization_percent')] = utilization!;
      if (Number.isFinite(used)) metrics[key('memory_used_mb')] = used!;
      if (Number.isFinite(used) && Number.isFinite(total) && total! > 0) metrics[key('memory_used_percent')] = (100 * used!) / total!;
    });
  return metrics;
}

/** The nvidia-smi executable on PATH, if any. */
export function findNvidiaSmi(path = process.env.PATH ?? ''): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, 'nvidia-smi');
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

export interface SystemMetricsOptions {
  /** nvidia-smi to query; false: no GPU metrics; default: looked up on PATH. */
  nvidiaSmi?: string | false;
  /** Injected for tests. */
  readCpu?: () => CpuTimes;
  readMemory?: () => { rssBytes: number; freeBytes: number; totalBytes: number };
  runCommand?: (file: string, args: string[]) => string;
}

const MB = 1024 * 1024;

/** Each `sample()` reports the CPU load since the previous one (or since construction). */
export class SystemMetricsSampler {
  #lastCpu: CpuTimes;
  #gpuBroken = false;
  readonly #readCpu: () => CpuTimes;
  readonly #readMemory: NonNullable<SystemMetricsOptions['readMemory']>;
  readonly #runCommand: NonNullable<SystemMetricsOptions['runCommand']>;
  readonly #nvidiaSmi: string | undefined;

  constructor(options: SystemMetricsOptions = {}) {
    this.#readCpu = options.readCpu ?? (() => cpuTimes());
    this.#readMemory = options.readMemory ?? (() => ({ rssBytes: process.memoryUsage.rss(), freeBytes: freemem(), totalBytes: totalmem() }));
    this.#runCommand =
      options.runCommand ?? ((file, args) => execFileSync(file, args, { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] }));
    this.#nvidiaSmi = options.nvidiaSmi === false ? undefined : (options.nvidiaSmi ?? findNvidiaSmi());
    this.#lastCpu = this.#readCpu();
  }

  sample(): Record<string, number> {
    const cpu = this.#readCpu();
    const memory = this.#readMemory();
    const metrics: Record<string, number> = {
      [`${SYSTEM_PREFIX}cpu_percent`]: cpuPercentBetween(this.#lastCpu, cpu),
      [`${SYSTEM_PREFIX}memory_rss_mb`]: memory.rssBytes / MB,
      [`${SYSTEM_PREFIX}memory_used_percent`]: (100 * (memory.totalBytes - memory.freeBytes)) / memory.totalBytes,
    };
    this.#lastCpu = cpu;
    if (this.#nvidiaSmi && !this.#gpuBroken) {
      try {
        const csv = this.#runCommand(this.#nvidiaSmi, ['--query-gpu=utilization.gpu,memory.used,memory.total', '--format=csv,noheader,nounits']);
        Object.assign(metrics, parseNvidiaSmi(csv));
      } catch {
        // A driver that fails once (no device, container without /dev/nvidia*) fails every time.
        this.#gpuBroken = true;
      }
    }
    return metrics;
  }
}
