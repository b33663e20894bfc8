import { defineCommand, UsageError } from '../command.ts';
import { abortOnSignals } from '../interrupt.ts';
import { imageCodec, MODEL_ARGUMENT, modelOptions, openPredictor, positiveInteger } from '../models.ts';

export default defineCommand({
  name: 'serve',
  summary: 'Serve a trained model over HTTP: POST /predict (and /invocations), GET /health, GET /metadata',
  description:
    'Loads MODEL like `exp predict` and answers POST /predict (MLflow\'s /invocations too) with top-k classes and ' +
    'probabilities per image. A request is JSON {"instances": [...]} of base64 images, {"b64": ...} objects or ' +
    'HxWxC pixel arrays (plus an optional "top_k"), or multipart/form-data with image files. Requests arriving ' +
    'within --max-wait-ms are run together, up to --max-batch images per forward pass; beyond --max-queue waiting ' +
    'images, or --max-incoming requests being received, the server answers 503. Bad input gets 400 with a one-line reason, a body over --max-body-mb 413. ' +
    'Binds 127.0.0.1 unless --host says otherwise; SIGTERM or Ctrl-C finishes the requests in flight, then exits.',
  positionals: [MODEL_ARGUMENT],
  options: {
    port: { type: 'string', placeholder: 'N', default: '8080', description: 'Port (0: any free port)' },
    host: { type: 'string', placeholder: 'ADDR', default: '127.0.0.1', description: 'Address to bind (0.0.0.0 exposes the model to the network)' },
    'max-batch': { type: 'string', placeholder: 'N', default: '32', description: 'Images per forward pass' },
    'max-wait-ms': { type: 'string', placeholder: 'MS', default: '5', description: 'How long a request waits for others to batch with (0: no dynamic batching)' },
    'max-queue': { type: 'string', placeholder: 'N', default: '256', description: 'Waiting images before 503' },
    'max-incoming': { type: 'string', placeholder: 'N', default: '32', description: 'Requests being received or decoded at once before 503' },
    'max-images': { type: 'string', placeholder: 'N', default: '64', description: 'Images per request' },
    'max-body-mb': { type: 'string', placeholder: 'MB', default: '20', description: 'Request body limit' },
    'top-k': { type: 'string', placeholder: 'K', default: '5', description: 'Classes per image unless the request asks for top_k' },
    ...modelOptions,
  },
  examples: [
    ['exp serve 20261204-010203-abcdef', 'A run\'s model on http://127.0.0.1:8080'],
    ['exp serve models:/mixer@champion --port 9000', 'A registered model from MLflow'],
    ['curl -s localhost:8080/predict -F image=@cat.jpg', 'Classify a file (multipart)'],
  ],
  async run({ positionals, options }, context) {
    const port = Number(options.port);
    if (!/^\d+$/.test(options.port) || port > 65535) throw new UsageError(`--port expects 0..65535, got "${options.port}"`, 'serve');
    if (!/^\d+$/.test(options['max-wait-ms'])) throw new UsageError(`--max-wait-ms expects a non-negative integer, got "${options['max-wait-ms']}"`, 'serve');
    const settings = {
      maxBatch: positiveInteger('max-batch', options['max-batch'], 'serve'),
      maxWaitMs: Number(options['max-wait-ms']),
      maxQueue: positiveInteger('max-queue', options['max-queue'], 'serve'),
      maxIncoming: positiveInteger('max-incoming', options['max-incoming'], 'serve'),
      maxImagesPerRequest: positiveInteger('max-images', options['max-images'], 'serve'),
      maxBodyBytes: positiveInteger('max-body-mb', options['max-body-mb'], 'serve') * 1024 * 1024,
      topK: positiveInteger('top-k', options['top-k'], 'serve'),
    };
    const { startModelServer } = await import('@tessera/core');
    const { predictor, resolved } = await openPredictor(positionals[0]!, context, { which: options.which, runsDir: options['runs-dir'], backend: options.backend, plugin: options.plugin }, 'serve');
    const { decode } = await imageCodec();
    const log = (message: string) => void context.stderr.write(`${message}\n`);
    let server;
    try {
      server = await startModelServer({ predictor, decode, host: options.host, port, ...settings, log });
    } catch (error) {
      predictor.dispose();
      const code = (error as NodeJS.ErrnoException).code;
      // The port is taken or privileged, or --host is not an address of this machine (or no name at all).
      if (['EADDRINUSE', 'EACCES', 'EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN'].includes(code ?? '')) throw new UsageError(`cannot listen on ${options.host}:${port}: ${code}`, 'serve');
      throw error;
    }
    const { metadata } = predictor;
    context.stdout.write(
      `Serving ${resolved.label} (${metadata.experiment}, ${metadata.classes.length} classes, input ${metadata.rawShape.join('x')}) at ${server.url}\n` +
        `  POST ${server.url}/predict   GET ${server.url}/metadata   GET ${server.url}/health   (Ctrl-C to stop)\n`,
    );
    // The first Ctrl-C or SIGTERM finishes the requests in flight; a second one ends the process.
    const shutdown = abortOnSignals({ first: (signal) => log(`${signal}: finishing the requests in flight`) });
    await new Promise((resolve) => shutdown.signal.addEventListener('abort', resolve, { once: true }));
    await server.close().catch(() => undefined);
    predictor.dispose();
    log('stopped');
  },
});
