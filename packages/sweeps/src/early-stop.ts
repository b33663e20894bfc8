import type { Goal } from './searcher.ts';

/**
 * Early termination rules, as pure functions of per-epoch metric curves. A curve's
 * `values[e - 1]` is the objective metric after epoch e; a decision is asked for each time a
 * running trial reports an epoch, for the epoch it just reported (`values.length`).
 */
export type EarlyTerminate =
  | { type: 'median'; minEpochs: number; minTrials: number }
  | { type: 'asha'; gracePeriod: number; reductionFactor: number; maxEpochs: number }
  | { type: 'hyperband'; gracePeriod: number; reductionFactor: number; maxEpochs: number; brackets: number };

export interface Curve {
  /** The trial's index in the sweep (hyperband assigns brackets by it). */
  index: number;
  values: readonly number[];
}

export interface Decision {
  stop: boolean;
  /** Why; for a stop it becomes the `sweep.stop_reason` tag of the KILLED run. */
  reason: string;
}

export interface Objective {
  metric: string;
  goal: Goal;
}

export function decide(rule: EarlyTerminate, objective: Objective, trial: Curve, others: readonly Curve[]): Decision {
  switch (rule.type) {
    case 'median':
      return medianRule(rule, objective, trial, others);
    case 'asha':
      return ashaRule(rungs(rule.gracePeriod, rule.reductionFactor, rule.maxEpochs), rule.reductionFactor, objective, trial, others, 'asha');
    case 'hyperband': {
      const bracket = trial.index % rule.brackets;
      const peers = others.filter((o) => o.index % rule.brackets === bracket);
      const first = rule.gracePeriod * rule.reductionFactor ** bracket;
      const name = `hyperband bracket ${bracket}`;
      return ashaRule(rungs(first, rule.reductionFactor, rule.maxEpochs), rule.reductionFactor, objective, trial, peers, name);
    }
  }
}

/**
 * Median stopping rule (Golovin et al. 2017, Google Vizier): after `minEpochs`, stop a trial at
 * epoch e when its best value so far is worse than the median of the other trials' running
 * averages (mean of epochs 1..e), counting only the trials that have reached epoch e, and only
 * once at least `minTrials` of them have.
 */
function medianRule(
  rule: Extract<EarlyTerminate, { type: 'median' }>,
  objective: Objective,
  trial: Curve,
  others: readonly Curve[],
): Decision {
  const epoch = trial.values.length;
  if (epoch < rule.minEpochs) return keep(`median: epoch ${epoch} is before min_epochs ${rule.minEpochs}`);
  const peers = others.filter((o) => o.values.length >= epoch);
  if (peers.length < rule.minTrials) {
    return keep(`median: ${peers.length} other trial(s) reached epoch ${epoch}, min_trials is ${rule.minTrials}`);
  }
  const averages = peers.map((o) => mean(o.values.slice(0, epoch)));
  const med = median(averages);
  const best = bestOf(trial.values, objective.goal);
  const summary =
    `best ${objective.metric} ${fmt(best)} by epoch ${epoch} vs the median ${fmt(med)} of ` +
    `${peers.length} other trials' running averages`;
  return isWorse(best, med, objective.goal) ? stop(`median stopping rule: ${summary}`) : keep(`median: ${summary}`);
}

/**
 * Asynchronous successive halving (Li et al. 2018, ASHA), in its stopping form (as Ray Tune's
 * ASHAScheduler): rungs sit at r, r*eta, r*eta^2, ... below maxEpochs. A trial that reaches a rung
 * continues only if its value there ranks within the top ceil(n / eta) of the n trials that have
 * reached that rung so far, itself included; the first trial at a rung always continues (nothing
 * to compare with yet). Ties favour continuing.
 */
function ashaRule(
  rungEpochs: readonly number[],
  eta: number,
  objective: Objective,
  trial: Curve,
  others: readonly Curve[],
  name: string,
): Decision {
  const epoch = trial.values.length;
  const rung = rungEpochs.indexOf(epoch);
  if (rung < 0) return keep(`${name}: epoch ${epoch} is not a rung (${rungEpochs.join(', ') || 'none'})`);
  const value = trial.values[epoch - 1]!;
  const peers = others.filter((o) => o.values.length >= epoch).map((o) => o.values[epoch - 1]!);
  const n = peers.length + 1;
  const keepCount = Math.ceil(n / eta);
  const better = peers.filter((v) => isWorse(value, v, objective.goal)).length;
  const summary = `${objective.metric} ${fmt(value)} at rung ${rung} (epoch ${epoch}) ranks ${better + 1} of ${n}, top ${keepCount} continue`;
  return better < keepCount ? keep(`${name}: ${summary}`) : stop(`${name}: ${summary}`);
}

/** The rung epochs r * eta^k that are strictly below maxEpochs (a rung at the end decides nothing). */
export function rungs(first: number, eta: number, maxEpochs: number): number[] {
  const out: number[] = [];
  for (let r = first; r < maxEpochs; r *= eta) out.push(Math.round(r));
  return out;
}

/** Hyperband's default bracket count: s_max + 1 with s_max = floor(log_eta(maxEpochs / grace)). */
export function defaultBrackets(gracePeriod: number, eta: number, maxEpochs: number): number {
  return Math.max(1, Math.floor(Math.log(maxEpochs / gracePeriod) / Math.log(eta) + 1e-9) + 1);
}

function isWorse(a: number, b: number, goal: Goal): boolean {
  return goal === 'maximize' ? a < b : a > b;
}

function bestOf(values: readonly number[], goal: Goal): number {
  return goal === 'maximize' ? Math.max(...values) : Math.min(...values);
}

function mean(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function fmt(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toPrecision(4);
}

const keep = (reason: string): Decision => ({ stop: false, reason });
const stop = (reason: string): Decision => ({ stop: true, reason });
