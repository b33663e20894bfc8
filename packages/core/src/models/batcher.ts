/**
 * Dynamic batching: requests that arrive within `maxWaitMs` of the oldest waiting one are run
 * as one forward pass of up to `maxBatch` images (one request larger than that runs alone).
 * While a batch runs, the next one gathers. `maxQueue` caps the images waiting: beyond it
 * `submit` refuses at once (QueueFullError), so a flood gets fast 503s instead of growing
 * memory and latency without bound. With `maxWaitMs: 0` and `maxBatch: 1` every request runs
 * by itself, in arrival order (the "no batching" baseline of `pnpm bench serve`).
 *
 * Waiting only pays when more work is on its way: the server says how many requests it is still
 * reading or decoding (`incoming`), and when there are none the batch runs at once. So a lone
 * client never pays the wait, while concurrent clients are gathered.
 */
export interface BatcherOptions {
  maxBatch: number;
  maxWaitMs: number;
  maxQueue: number;
  /** Requests received but not yet submitted (being read or decoded); absent: always wait. */
  incoming?: () => number;
}

export class QueueFullError extends Error {
  override name = 'QueueFullError';
}

interface Pending<T> {
  items: T[];
  arrived: number;
  resolve(results: Float32Array[]): void;
  reject(error: unknown): void;
}

export class DynamicBatcher<T> {
  readonly #queue: Pending<T>[] = [];
  #queued = 0;
  #running = false;
  #timer: NodeJS.Timeout | undefined;
  #idle: (() => void)[] = [];
  /** Batches run and images in them, for /metadata and the benchmark. */
  readonly stats = { batches: 0, items: 0 };

  constructor(
    readonly options: BatcherOptions,
    /** Runs one batch; returns one result per item, in order. */
    readonly run: (items: T[]) => Promise<Float32Array[]>,
  ) {}

  /** Images waiting (not yet in a running batch). */
  get queued(): number {
    return this.#queued;
  }

  submit(items: T[]): Promise<Float32Array[]> {
    if (this.#queued + items.length > this.options.maxQueue && this.#queued > 0) {
      return Promise.reject(new QueueFullError(`server busy: ${this.#queued} images queued (limit ${this.options.maxQueue}); retry shortly`));
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ items, arrived: performance.now(), resolve, reject });
      this.#queued += items.length;
      this.#schedule();
    });
  }

  /** Resolves once nothing is queued or running (graceful shutdown). */
  drained(): Promise<void> {
    if (!this.#running && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #schedule(): void {
    if (this.#running || this.#queue.length === 0) return;
    const wait = this.options.maxWaitMs - (performance.now() - this.#queue[0]!.arrived);
    const expectMore = this.options.incoming ? this.options.incoming() > 0 : true;
    if (this.#queued >= this.options.maxBatch || wait <= 0 || !expectMore) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      void this.#flush();
    } else if (!this.#timer) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#schedule();
      }, wait);
    }
  }

  async #flush(): Promise<void> {
    this.#running = true;
    const batch: Pending<T>[] = [this.#queue.shift()!];
    let size = batch[0]!.items.length;
    while (this.#queue.length > 0 && size + this.#queue[0]!.items.length <= this.options.maxBatch) {
      const next = this.#queue.shift()!;
      size += next.items.length;
      batch.push(next);
    }
    this.#queued -= size;
    try {
      const results = await this.run(batch.flatMap((p) => p.items));
      this.stats.batches += 1;
      this.stats.items += size;
      let offset = 0;
      for (const pending of batch) {
        pending.resolve(results.slice(offset, offset + pending.items.length));
        offset += pending.items.length;
      }
    } catch (error) {
      for (const pending of batch) pending.reject(error);
    } finally {
      this.#running = false;
      if (this.#queue.length > 0) this.#schedule();
      else for (const resolve of this.#idle.splice(0)) resolve();
    }
  }
}
