import { execFileSync } from 'node:child_process';
import { accessSync, constants as fsConstants, readFileSync, statfsSync } from 'node:fs';
import { cpus, freemem, totalmem } from 'node:os';
import { delimiter, join } from 'node:path';

/**
 * Machine load recorded beside a run's metrics under MLflow's own names and cadence (MLflow's
 * system metrics monitor: `system/cpu_utilization_percentage`, `system/system_memory_usage_megabytes`,
 * ..., a sample every 10 s with step = sample number from 0), so a Tessera run and a Python run
 * chart together: CPU utilisation of the whole machine since the previous sample, its memory and
 * disk in use, network traffic since the run began, and per-GPU utilisation and memory when
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
      if (Number.isFinite(utilization)) metrics[key('utilization_percentage')] = utilization!;
      if (Number.isFinite(used)) metrics[key('memory_usage_megabytes')] = used!;
      if (Number.isFinite(used) && Number.isFinite(total) && total! > 0) metrics[key('memory_usage_percentage')] = (100 * used!) / total!;
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
  readMemory?: () => { freeBytes: number; totalBytes: number };
  /** Bytes of the file system holding the run store; undefined where it cannot be read. */
  readDisk?: () => { freeBytes: number; totalBytes: number } | undefined;
  /** Bytes received and sent by every interface since boot (/proc/net/dev); undefined off Linux. */
  readNetwork?: () => { receivedBytes: number; sentBytes: number } | undefined;
  runCommand?: (file: string, args: string[]) => string;
}

const MB = 1024 * 1024;

function readDisk(path: string): { freeBytes: number; totalBytes: number } | undefined {
  try {
    const stats = statfsSync(path);
    return { freeBytes: stats.bavail * stats.bsize, totalBytes: stats.blocks * stats.bsize };
  } catch {
    return undefined;
  }
}

function readNetwork(): { receivedBytes: number; sentBytes: number } | undefined {
  try {
    let receivedBytes = 0;
    let sentBytes = 0;
    for (const line of readFileSync('/proc/net/dev', 'utf8').split('\n').slice(2)) {
      const [name, rest] = line.split(':');
      if (!rest || name!.trim() === 'lo') continue;
      const fields = rest.trim().split(/\s+/).map(Number);
      receivedBytes += fields[0] ?? 0;
      sentBytes += fields[8] ?? 0;
    }
    return { receivedBytes, sentBytes };
  } catch {
    return undefined;
  }
}

/** Each `sample()` reports the CPU load since the previous one (or since construction). */
export class SystemMetricsSampler {
  #lastCpu: CpuTimes;
  readonly #readDisk: () => { freeBytes: number; totalBytes: number } | undefined;
  readonly #readNetwork: () => { receivedBytes: number; sentBytes: number } | undefined;
  readonly #network0: { receivedBytes: number; sentBytes: number } | undefined;
  #gpuBroken = false;
  readonly #readCpu: () => CpuTimes;
  readonly #readMemory: NonNullable<SystemMetricsOptions['readMemory']>;
  readonly #runCommand: NonNullable<SystemMetricsOptions['runCommand']>;
  readonly #nvidiaSmi: string | undefined;

  constructor(options: SystemMetricsOptions = {}) {
    this.#readCpu = options.readCpu ?? (() => cpuTimes());
    this.#readMemory = options.readMemory ?? (() => ({ freeBytes: freemem(), totalBytes: totalmem() }));
    this.#readDisk = options.readDisk ?? (() => readDisk(process.cwd()));
    this.#readNetwork = options.readNetwork ?? readNetwork;
    this.#network0 = this.#readNetwork();
    this.#runCommand =
      options.runCommand ?? ((file, args) => execFileSync(file, args, { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] }));
    this.#nvidiaSmi = options.nvidiaSmi === false ? undefined : (options.nvidiaSmi ?? findNvidiaSmi());
    this.#lastCpu = this.#readCpu();
  }

  sample(): Record<string, number> {
    const cpu = this.#readCpu();
    const memory = this.#readMemory();
    const used = memory.totalBytes - memory.freeBytes;
    const metrics: Record<string, number> = {
      [`${SYSTEM_PREFIX}cpu_utilization_percentage`]: cpuPercentBetween(this.#lastCpu, cpu),
      [`${SYSTEM_PREFIX}system_memory_usage_megabytes`]: used / MB,
      [`${SYSTEM_PREFIX}system_memory_usage_percentage`]: (100 * used) / memory.totalBytes,
    };
    this.#lastCpu = cpu;
    const disk = this.#readDisk();
    if (disk && disk.totalBytes > 0) {
      metrics[`${SYSTEM_PREFIX}disk_usage_percentage`] = (100 * (disk.totalBytes - disk.freeBytes)) / disk.totalBytes;
      metrics[`${SYSTEM_PREFIX}disk_usage_megabytes`] = (disk.totalBytes - disk.freeBytes) / MB;
      metrics[`${SYSTEM_PREFIX}disk_available_megabytes`] = disk.freeBytes / MB;
    }
    const network = this.#readNetwork();
    if (network && this.#network0) {
      // As MLflow: traffic since monitoring began, not per interval.
      metrics[`${SYSTEM_PREFIX}network_receive_megabytes`] = (network.receivedBytes - this.#network0.receivedBytes) / MB;
      metrics[`${SYSTEM_PREFIX}network_transmit_megabytes`] = (network.sentBytes - this.#network0.sentBytes) / MB;
    }
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

/** MLflow's default sampling interval (MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL, seconds). */
export const SYSTEM_METRICS_INTERVAL_SECONDS = 10;

/**
 * Logs a sample every `intervalSeconds` while a run trains, step = sample number from 0, as
 * MLflow's SystemMetricsMonitor does; `stop()` logs a last one, so a run shorter than the
 * interval still has its numbers. Errors of one sample never reach the training loop.
 */
export class SystemMetricsMonitor {
  #timer: ReturnType<typeof setInterval> | undefined;
  #step = 0;
  #pending: Promise<void> = Promise.resolve();

  constructor(
    private readonly log: (metrics: Record<string, number>, step: number) => Promise<void>,
    private readonly sampler = new SystemMetricsSampler(),
    readonly intervalSeconds = Number(process.env.MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL) || SYSTEM_METRICS_INTERVAL_SECONDS,
    /** The first sample's step (a resumed run continues its numbering). */
    firstStep = 0,
  ) {
    this.#step = firstStep;
  }

  start(): this {
    this.#timer ??= setInterval(() => this.#logSample(), this.intervalSeconds * 1000);
    // Never keeps the process alive on its own.
    this.#timer.unref?.();
    return this;
  }

  #logSample(): void {
    const step = this.#step++;
    const metrics = this.sampler.sample();
    this.#pending = this.#pending.then(() => this.log(metrics, step)).catch(() => undefined);
  }

  async stop(): Promise<void> {
    if (this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#logSample();
    await this.#pending;
  }
}
