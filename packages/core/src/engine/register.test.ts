import { describe, expect, it } from 'vitest';
import { createRegistries } from '../registry/kinds.ts';
import { defaultsOf } from '../registry/params.ts';
import { registerEngine } from './register.ts';

/*
 * An optimizer, schedule or callback made from no params must be the one made from its schema's
 * documented defaults (the values the validator writes into a config, so what a run records):
 * the classes' own fallbacks may not drift from the schema.
 */
const registries = createRegistries();
registerEngine(registries);

/** An instance's state as plain data: its own fields, nested objects included. */
const fields = (value: unknown): unknown => JSON.parse(JSON.stringify(value));

describe("every optimizer, schedule and callback: its documented defaults are its runtime defaults", () => {
  const properties = (params: unknown) => (params as { properties: Record<string, unknown> }).properties;

  it.each(registries.optimizers.list().map((entry) => [entry.type, entry] as const))('%s', (_type, entry) => {
    const defaults = defaultsOf({ properties: properties(entry.params) });
    expect(Object.keys(defaults).length).toBeGreaterThan(0);
    expect(fields(entry.create({}))).toEqual(fields(entry.create(structuredClone(defaults))));
  });

  it.each(registries.callbacks.list().map((entry) => [entry.type, entry] as const))('%s', (_type, entry) => {
    const defaults = defaultsOf({ properties: properties(entry.params) });
    expect(Object.keys(defaults).length).toBeGreaterThan(0);
    expect(fields(entry.create({}))).toEqual(fields(entry.create(structuredClone(defaults))));
  });

  it.each(registries.schedules.list().map((entry) => [entry.type, entry] as const))('%s (learning rates of a 100-step run)', (_type, entry) => {
    const defaults = defaultsOf({ properties: properties(entry.params) });
    const rates = (schedule: (step: number, ctx: { baseLearningRate: number; stepsPerEpoch: number; totalSteps: number }) => number) =>
      Array.from({ length: 101 }, (_, step) => schedule(step, { baseLearningRate: 0.01, stepsPerEpoch: 10, totalSteps: 100 }));
    expect(rates(entry.create({}) as never)).toEqual(rates(entry.create(structuredClone(defaults)) as never));
  });
});
