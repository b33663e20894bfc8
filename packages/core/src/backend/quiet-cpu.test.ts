import * as tf from '@tensorflow/tfjs';
import { expect, it, vi } from 'vitest';
import './quiet-cpu.ts';

it('the cpu backend writes tensors without the "install tfjs-node" banner', async () => {
  const warn = vi.spyOn(console, 'warn');
  await tf.setBackend('cpu');
  tf.tensor([1, 2, 3]).dispose();
  expect(warn.mock.calls.flat().join('\n')).not.toContain('looks like you are running TensorFlow.js in Node.js');
  warn.mockRestore();
});
