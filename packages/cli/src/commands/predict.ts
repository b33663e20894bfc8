import { dirname, extname, resolve } from 'node:path';
import type { Prediction } from '@tessera/core';
import { defineCommand, UsageError } from '../command.ts';
import { assertWritableFolder, imageCodec, MODEL_ARGUMENT, modelOptions, openPredictor, positiveInteger } from '../models.ts';

const OUT_FORMATS = ['.json', '.csv', '.npy'];

export default defineCommand({
  name: 'predict',
  summary: 'Classify images with a trained model: top-k classes with probabilities',
  description:
    'Loads MODEL (a run\'s final or best model, an exported directory, or an MLflow model URI) and classifies ' +
    'every --input: image files (PNG, JPEG, WebP, GIF, TIFF, BMP; decoded, EXIF-rotated and resized to the ' +
    'model\'s input size), folders of them, globs, and binary dataset records (CIFAR .bin / .bin.gz). The ' +
    'training run\'s deterministic preprocessing is applied with its saved statistics; augmentation never runs. ' +
    'Prints a top-k table, or JSON with --json; --out FILE writes .json, .csv (a probability column per class) ' +
    'or .npy ([images, classes] float32 probabilities).',
  positionals: [MODEL_ARGUMENT, { name: 'INPUT', variadic: true, optional: true, description: 'More inputs after --input (so a shell glob can expand)' }],
  options: {
    input: { type: 'string', multiple: true, placeholder: 'PATH', description: 'Image file, folder, glob or .bin records (repeatable)' },
    'top-k': { type: 'string', placeholder: 'K', default: '5', description: 'Classes shown per image' },
    json: { type: 'boolean', description: 'Print JSON instead of the table' },
    out: { type: 'string', placeholder: 'FILE', description: 'Write the predictions to FILE.json, FILE.csv or FILE.npy' },
    'batch-size': { type: 'string', placeholder: 'N', default: '128', description: 'Images per forward pass' },
    ...modelOptions,
  },
  examples: [
    ['exp predict 20261204-010203-abcdef --input cat.jpg dog.png', 'Top-5 classes of two photos with a run\'s final model'],
    ['exp predict runs/mixer/20261204-010203-abcdef --which best --input photos/ --out predictions.csv', 'A folder, the best epoch\'s model, as CSV'],
    ['exp predict models:/mixer@champion --input "shots/*.jpg" --json', 'A registered model from MLflow, JSON output'],
    ['exp predict exported/ --input ../shared/data/cifar-100/test.bin --out probabilities.npy', 'CIFAR records to a NumPy array'],
  ],
  async run({ positionals, options }, context) {
    const inputs = [...(options.input ?? []), ...positionals.slice(1)];
    if (inputs.length === 0) throw new UsageError('--input PATH is required (an image, a folder, a glob or a .bin file)', 'predict');
    const k = positiveInteger('top-k', options['top-k'], 'predict');
    const batchSize = positiveInteger('batch-size', options['batch-size'], 'predict');
    const outFormat = options.out ? extname(options.out).toLowerCase() : undefined;
    if (outFormat !== undefined && !OUT_FORMATS.includes(outFormat)) {
      throw new UsageError(`--out FILE must end in ${OUT_FORMATS.join(', ')}, got "${options.out}"`, 'predict');
    }
    // Before the model loads and the images are classified: a bad --out is a mistake to report now.
    if (options.out) assertWritableFolder(dirname(resolve(context.cwd, options.out)), options.out, 'predict');
    const core = await import('@tessera/core');
    const { decode, extensions } = await imageCodec();
    const files = core.expandInputs(inputs, { cwd: context.cwd, imageExtensions: extensions });
    const { predictor, resolved } = await openPredictor(positionals[0]!, context, { which: options.which, runsDir: options['runs-dir'], backend: options.backend, plugin: options.plugin }, 'predict');
    try {
      const { metadata } = predictor;
      // One batch of pixels in memory at a time; what is kept per image is its probabilities.
      const predictions: Prediction[] = [];
      const rows: Float32Array[] = [];
      for await (const images of core.readInputBatches(files, { shape: metadata.rawShape, records: metadata.data.records, cwd: context.cwd, decode, batchSize })) {
        const batch = await predictor.probabilities(images, batchSize);
        predictions.push(...core.predictionsOf(predictor, images, batch, k));
        rows.push(batch);
      }
      const probabilities = core.concatFloat32(rows);
      const labelled = predictions.filter((p) => p.label !== undefined);
      if (labelled.length > 0) {
        const correct = labelled.filter((p) => p.top.indices[0] === p.label).length;
        context.stderr.write(`${labelled.length} labelled images: accuracy ${((100 * correct) / labelled.length).toFixed(2)}%\n`);
      }
      const json = () => `${JSON.stringify(core.predictionsJson(resolved.label, predictor.classes, predictions, probabilities), null, 1)}\n`;
      if (options.out) {
        const out = resolve(context.cwd, options.out);
        if (outFormat === '.npy') await core.writeFileAtomic(out, core.npy(probabilities, [predictions.length, predictor.numClasses]));
        else if (outFormat === '.csv') await core.writeFileAtomic(out, core.predictionsCsv(predictor.classes, predictions, probabilities));
        else await core.writeFileAtomic(out, json());
        context.stderr.write(`wrote ${predictions.length} predictions to ${options.out}\n`);
      } else if (options.json) {
        context.stdout.write(json());
      } else {
        context.stdout.write(core.formatPredictionTable(predictions, predictor.classes));
      }
    } finally {
      predictor.dispose();
    }
  },
});
