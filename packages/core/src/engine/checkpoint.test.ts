import { afterEach, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readCheckpoint, writeCheckpoint } from './checkpoint.ts';

const root = mkdtempSync(join(tmpdir(), 'tessera-ckpt-'));
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('checkpoint files', () => {
  it('round-trips state and tensors of every dtype bit for bit', async () => {
    const dir = join(root, 'a', 'checkpoint');
    const tensors = new Map<string, tf.Tensor>([
      ['weights/0', tf.tensor2d([[1.5, -2.25], [Math.PI, 1e-30]])],
      ['count', tf.tensor1d([7, -3], 'int32')],
      ['scalar', tf.scalar(0.1)],
    ]);
    await writeCheckpoint(dir, { epoch: 3, note: 'x' }, tensors);
    const loaded = await readCheckpoint<{ epoch: number }>(dir);
    expect(loaded!.state).toEqual({ epoch: 3, note: 'x' });
    for (const [key, tensor] of tensors) {
      const back = loaded!.tensors.get(key)!;
      expect(back.dtype).toBe(tensor.dtype);
      expect(back.shape).toEqual(tensor.shape);
      expect(Array.from(back.dataSync())).toEqual(Array.from(tensor.dataSync()));
    }
  });

  it('replaces the previous checkpoint, and falls back to it if a crash left only the old one', async () => {
    const dir = join(root, 'b', 'checkpoint');
    await writeCheckpoint(dir, { epoch: 1 }, new Map());
    await writeCheckpoint(dir, { epoch: 2 }, new Map());
    expect((await readCheckpoint<{ epoch: number }>(dir))!.state.epoch).toBe(2);
    expect(existsSync(`${dir}.old`)).toBe(false);
    renameSync(dir, `${dir}.old`); // as if killed between the two renames
    expect((await readCheckpoint<{ epoch: number }>(dir))!.state.epoch).toBe(2);
    expect(await readCheckpoint(join(root, 'none'))).toBeUndefined();
  });
});
