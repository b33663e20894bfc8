import { describe, expect, it } from 'vitest';
import { SystemMetricsMonitor, SystemMetricsSampler, cpuPercentBetween, cpuTimes, parseNvidiaSmi } from './system-metrics.ts';

const MB = 1024 * 1024;

describe('system metrics', () => {
  it('sums core times and turns two readings into a busy percentage', () => {
    const core = (user: number, idle: number) => ({ model: '', speed: 0, times: { user, nice: 0, sys: 10, idle, irq: 0 } });
    expect(cpuTimes([core(100, 300), core(50, 400)])).toEqual({ idle: 700, total: 870 });
    // 1000 ms passed, 250 of them idle: 75 % busy.
    expect(cpuPercentBetween({ idle: 500, total: 2000 }, { idle: 750, total: 3000 })).toBe(75);
    expect(cpuPercentBetween({ idle: 5, total: 10 }, { idle: 5, total: 10 })).toBe(0);
  });

  it('parses nvidia-smi CSV per GPU and leaves out [N/A] fields', () => {
    expect(parseNvidiaSmi('37, 2048, 8192\n[N/A], 100, [N/A]\n')).toEqual({
      'system/gpu_0_utilization_percentage': 37,
      'system/gpu_0_memory_usage_megabytes': 2048,
      'system/gpu_0_memory_usage_percentage': 25,
      'system/gpu_1_memory_usage_megabytes': 100,
    });
  });

  it('samples CPU since the previous sample, memory, and GPUs until nvidia-smi fails', () => {
    const cpu = [
      { idle: 0, total: 0 },
      { idle: 100, total: 400 },
      { idle: 400, total: 800 },
    ];
    let calls = 0;
    const sampler = new SystemMetricsSampler({
      readCpu: () => cpu.shift()!,
      readMemory: () => ({ freeBytes: 6 * 1024 * MB, totalBytes: 8 * 1024 * MB }),
      readDisk: () => ({ freeBytes: 75 * 1024 * MB, totalBytes: 100 * 1024 * MB }),
      readNetwork: (() => {
        let received = 0;
        return () => ({ receivedBytes: (received += 2 * MB), sentBytes: received / 2 });
      })(),
      nvidiaSmi: '/fake/nvidia-smi',
      runCommand: (file, args) => {
        calls++;
        expect(file).toBe('/fake/nvidia-smi');
        expect(args).toContain('--format=csv,noheader,nounits');
        if (calls > 1) throw new Error('driver gone');
        return '50, 10, 100\n';
      },
    });
    // MLflow's names (mlflow/system_metrics): memory and disk in use, network since the start.
    const disk = { 'system/disk_usage_percentage': 25, 'system/disk_usage_megabytes': 25 * 1024, 'system/disk_available_megabytes': 75 * 1024 };
    expect(sampler.sample()).toEqual({
      'system/cpu_utilization_percentage': 75,
      'system/system_memory_usage_megabytes': 2048,
      'system/system_memory_usage_percentage': 25,
      ...disk,
      'system/network_receive_megabytes': 2,
      'system/network_transmit_megabytes': 1,
      'system/gpu_0_utilization_percentage': 50,
      'system/gpu_0_memory_usage_megabytes': 10,
      'system/gpu_0_memory_usage_percentage': 10,
    });
    expect(sampler.sample()).toEqual({
      'system/cpu_utilization_percentage': 25,
      'system/system_memory_usage_megabytes': 2048,
      'system/system_memory_usage_percentage': 25,
      ...disk,
      'system/network_receive_megabytes': 4,
      'system/network_transmit_megabytes': 2,
    });
    expect(calls).toBe(2);
  });

  it('reads this machine without a GPU: plausible values', () => {
    const metrics = new SystemMetricsSampler({ nvidiaSmi: false }).sample();
    expect(Object.keys(metrics)).toEqual(expect.arrayContaining(['system/cpu_utilization_percentage', 'system/system_memory_usage_megabytes', 'system/system_memory_usage_percentage', 'system/disk_usage_percentage']));
    expect(metrics['system/system_memory_usage_megabytes']).toBeGreaterThan(10);
    expect(metrics['system/system_memory_usage_percentage']).toBeGreaterThan(0);
    expect(metrics['system/system_memory_usage_percentage']).toBeLessThanOrEqual(100);
    expect(metrics['system/cpu_utilization_percentage']).toBeGreaterThanOrEqual(0);
  });

  it('the monitor logs a sample per interval with steps from 0 (MLflow\u2019s cadence), and one more when stopped', async () => {
    const logged: [number, string[]][] = [];
    const sampler = new SystemMetricsSampler({ nvidiaSmi: false, readDisk: () => undefined, readNetwork: () => undefined });
    const monitor = new SystemMetricsMonitor(async (metrics, step) => void logged.push([step, Object.keys(metrics)]), sampler, 0.05).start();
    await new Promise((r) => setTimeout(r, 180));
    await monitor.stop();
    expect(logged.length).toBeGreaterThanOrEqual(3);
    expect(logged.map(([step]) => step)).toEqual(logged.map((_, i) => i));
    expect(logged[0]![1]).toEqual(['system/cpu_utilization_percentage', 'system/system_memory_usage_megabytes', 'system/system_memory_usage_percentage']);
    expect(new SystemMetricsMonitor(async () => {}).intervalSeconds).toBe(10);
  });
});
