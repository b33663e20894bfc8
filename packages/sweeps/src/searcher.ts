import { gridPoint, gridSize } from './grid.ts';
import { deriveSeed, Rng } from '@tessera/core';
import { sampleParams, type Parameter, type Params } from './space.ts';
import { TPE_DEFAULTS, tpeSuggest, type TpeOptions } from './tpe.ts';

export type SearchMethod = 'grid' | 'random' | 'bayes';
export type Goal = 'maximize' | 'minimize';

/** A trial whose objective is known (finished, or pruned with its last value). */
export interface Observation {
  params: Params;
  value: number;
}

/**
 * Every search method behind one ask/tell-style interface. The sweep's trial table is the
 * memory: `suggest` gets the index of the trial to create and every observation so far, so a
 * searcher holds no state of its own and a resumed sweep rebuilds it for free.
 */
export interface Searcher {
  readonly method: SearchMethod;
  /** The most trials this method can create (the grid size; Infinity for random and bayes). */
  readonly capacity: number;
  /**
   * Params for trial `index`, or null when the search space is exhausted. `inFlight`: the params
   * of trials started (or about to be) whose objective is not known yet, with `parallel` > 1.
   */
  suggest(index: number, observations: readonly Observation[], inFlight?: readonly Params[]): Params | null;
}

export interface SearcherOptions {
  method: SearchMethod;
  parameters: readonly Parameter[];
  seed: number;
  goal: Goal;
  /** bayes only: trials drawn at random before TPE takes over, and TPE's own knobs. */
  startupTrials?: number;
  tpe?: Partial<TpeOptions>;
}

/** Distinct stream tags, so random draws and TPE candidates never share a stream (the seed tree: sweep -> trial -> purpose). */
const RANDOM_STREAM = 1;
const TPE_STREAM = 2;

/** Trial `index`'s stream for one purpose: a function of the seed and the index only, never of other trials' draws. */
function trialRng(seed: number, index: number, purpose: number): Rng {
  return new Rng(deriveSeed(seed, index, purpose));
}

export function createSearcher(options: SearcherOptions): Searcher {
  const { parameters, seed } = options;
  const randomDraw = (index: number): Params => sampleParams(parameters, trialRng(seed, index, RANDOM_STREAM));
  switch (options.method) {
    case 'grid':
      return { method: 'grid', capacity: gridSize(parameters), suggest: (index) => gridPoint(parameters, index) };
    case 'random':
      return { method: 'random', capacity: Infinity, suggest: (index) => randomDraw(index) };
    case 'bayes': {
      const startup = Math.max(1, options.startupTrials ?? 10);
      const tpe = { ...TPE_DEFAULTS, ...options.tpe };
      const sign = options.goal === 'maximize' ? -1 : 1;
      return {
        method: 'bayes',
        capacity: Infinity,
        suggest(index, observations, inFlight = []) {
          // The startup trials are exactly the random searcher's draws, so a bayes sweep and a
          // random sweep with the same seed begin identically.
          const usable = observations.filter((o) => Number.isFinite(o.value));
          if (index < startup || usable.length < startup) return randomDraw(index);
          const losses = usable.map((o) => ({ params: o.params, loss: sign * o.value }));
          // The "constant liar" (Ginsbourger et al. 2010; Optuna's constant_liar): a trial still
          // running counts as if it had scored the worst loss so far, so parallel workers are not
          // all sent to the same promising spot; the lie goes once the real value is known.
          const worst = Math.max(...losses.map((l) => l.loss));
          const lies = inFlight.map((params) => ({ params, loss: worst }));
          return tpeSuggest(parameters, [...losses, ...lies], trialRng(seed, index, TPE_STREAM), tpe);
        },
      };
    }
  }
}
