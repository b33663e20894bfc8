/**
 * Learning-rate schedules: a pure function of the step, so a resumed run needs no schedule
 * state. Steps are 0-based optimizer iterations, as in Keras (the rate for the first update is
 * the schedule at step 0).
 */
export interface ScheduleContext {
  /** The optimizer's `learning_rate` from the config: the peak rate. */
  baseLearningRate: number;
  totalSteps: number;
  stepsPerEpoch: number;
}

export type Schedule = (step: number, ctx: ScheduleContext) => number;

export const constantSchedule = (): Schedule => (_step, ctx) => ctx.baseLearningRate;

export interface CosineParams {
  /** Linear warmup length in optimizer steps (or use warmup_epochs; the larger wins). */
  warmup_steps?: number;
  warmup_epochs?: number;
  /** Learning rate at step 0 of the warmup; it rises linearly to the base rate. */
  warmup_start?: number;
  /** The rate decays to alpha * base rate (Keras CosineDecay `alpha`). */
  alpha?: number;
  /** Length of the cosine part; defaults to the rest of the run after warmup. */
  decay_steps?: number;
}

/** Keras 3 CosineDecay with warmup_target = the base rate and initial rate = warmup_start. */
export function cosineSchedule(params: CosineParams = {}): Schedule {
  return (step, ctx) => {
    const warmup = Math.max(params.warmup_steps ?? 0, Math.round((params.warmup_epochs ?? 0) * ctx.stepsPerEpoch));
    const peak = ctx.baseLearningRate;
    if (step < warmup) {
      const start = params.warmup_start ?? 0;
      return start + (peak - start) * (step / warmup);
    }
    const decaySteps = Math.max(params.decay_steps ?? ctx.totalSteps - warmup, 1);
    const done = Math.min(Math.max((step - warmup) / decaySteps, 0), 1);
    const alpha = params.alpha ?? 0;
    return peak * ((1 - alpha) * 0.5 * (1 + Math.cos(Math.PI * done)) + alpha);
  };
}
