import { describe, expect, it } from 'vitest';
import { SystemMetricsSampler, cpuPercentBetween, cpuTimes, parseNvidiaSmi } from './system-metrics.ts';

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
      'system/gpu_0_utilization_percent': 37,
      'system/gpu_0_memory_used_mb': 2048,
      'system/gpu_0_memory_used_percent': 25,
      'system/gpu_1_memory_used_mb': 100,
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
      readMemory: () => ({ rssBytes: 300 * MB, freeBytes: 6 * 1024 * MB, totalBytes: 8 * 1024 * MB }),
      nvidiaSmi: '/fake/nvidia-smi',
      runCommand: (file, args) => {
        calls++;
        expect(file).toBe('/fake/nvidia-smi');
        expect(args).toContain('--format=csv,noheader,nounits');
        if (calls > 1) throw new Error('driver gone');
        return '50, 10, 100\n';
      },
    });
    expect(sampler.sample()).toEqual({
      'system/cpu_percent': 75,
      'system/memory_rss_mb': 300,
      'system/memory_used_percent': 25,
      'system/gpu_0_utilization_percent': 50,
      'system/gpu_0_memory_used_mb': 10,
      'system/gpu_0_memory_used_percent': 10,
    });
    expect(sampler.sample()).toEqual({ 'system/cpu_percent': 25, 'system/memory_rss_mb': 300, 'system/memory_used_percent': 25 });
    expect(calls).toBe(2);
  });

  it('reads this machine without a GPU: plausible values', () => {
    const metrics = new SystemMetricsSampler({ nvidiaSmi: false }).sample();
    expect(Object.keys(metrics).sort()).toEqual(['system/cpu_percent', 'system/memory_rss_mb', 'system/memory_used_percent']);
    expect(metrics['system/memory_rss_mb']).toBeGreaterThan(10);
    expect(metrics['system/memory_used_percent']).toBeGreaterThan(0);
    expect(metrics['system/memory_used_percent']).toBeLessThanOrEqual(100);
    expect(metrics['system/cpu_percent']).toBeGreaterThanOrEqual(0);
  });
});
