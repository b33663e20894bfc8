/**
 * Learning-rate schedules: a pure function of the step, so a resumed run needs no schedule
 * state. Steps are 0-based optimizer iterations, as in Keras (the rate for the first update is
 * the schedule at step 0).
 */
import { COSINE_DEFAULTS, type CosineParams } from './params.ts';

export interface ScheduleContext {
  /** The optimizer's `learning_rate` from the config: the peak rate. */
  baseLearningRate: number;
  totalSteps: number;
  stepsPerEpoch: number;
}

export type Schedule = (step: number, ctx: ScheduleContext) => number;

export const constantSchedule = (): Schedule => (_step, ctx) => ctx.baseLearningRate;

/** Keras 3 CosineDecay with warmup_target = the base rate and initial rate = warmup_start. */
export function cosineSchedule(params: CosineParams = {}): Schedule {
  return (step, ctx) => {
    const warmup = Math.max(params.warmup_steps ?? COSINE_DEFAULTS.warmup_steps, Math.round((params.warmup_epochs ?? COSINE_DEFAULTS.warmup_epochs) * ctx.stepsPerEpoch));
    const peak = ctx.baseLearningRate;
    if (step < warmup) {
      const start = params.warmup_start ?? COSINE_DEFAULTS.warmup_start;
      return start + (peak - start) * (step / warmup);
    }
    const decaySteps = Math.max(params.decay_steps ?? ctx.totalSteps - warmup, 1);
    const done = Math.min(Math.max((step - warmup) / decaySteps, 0), 1);
    const alpha = params.alpha ?? COSINE_DEFAULTS.alpha;
    return peak * ((1 - alpha) * 0.5 * (1 + Math.cos(Math.PI * done)) + alpha);
  };
}
