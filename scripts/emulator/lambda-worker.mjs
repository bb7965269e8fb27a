// One Lambda execution environment: a worker thread with its own process.env
// (given by the parent), which imports the built handler once (the "init"
// phase) and then serves one invocation at a time, as Lambda does.
// Plain JavaScript because worker threads do not inherit the TypeScript loader.
import { register } from 'node:module';
import { pathToFileURL } from 'node:url';
import './extra-ca.mjs';
import { parentPort, workerData } from 'node:worker_threads';

const { file, exportName, functionName, functionVersion, invokedFunctionArn, memoryLimitInMB, logGroupName, logStreamName } = workerData;

function describe(error) {
  if (error instanceof Error) {
    return { errorType: error.name || 'Error', errorMessage: error.message, trace: String(error.stack ?? '').split('\n') };
  }
  return { errorType: 'Error', errorMessage: String(error), trace: [] };
}

// Lambda's Node runtime honours NODE_OPTIONS; a worker thread does not read it, so the one flag that matters is applied here.
if (/--enable-source-maps/.test(process.env.NODE_OPTIONS ?? '')) process.setSourceMapsEnabled(true);

// nodejs18.x and later provide the AWS SDK v3; older runtimes are not emulated.
if (/^nodejs(1[89]|[2-9]\d)\.x$/.test(workerData.runtime ?? 'nodejs20.x')) {
  register(new URL('./runtime-sdk-hooks.mjs', import.meta.url), { data: { parentURL: import.meta.url } });
}

// A cold start's download and runtime start-up, when the emulator is asked to make them felt.
if (workerData.coldStartMs > 0) await new Promise((resolve) => setTimeout(resolve, workerData.coldStartMs));

let handler;
let initError;
try {
  const module = await import(pathToFileURL(file).href);
  handler = module[exportName];
  if (typeof handler !== 'function') {
    initError = { errorType: 'Runtime.HandlerNotFound', errorMessage: `${file} does not export a function "${exportName}"`, trace: [] };
  }
} catch (error) {
  initError = { ...describe(error), errorType: 'Runtime.ImportModuleError' };
}
parentPort.postMessage({ type: 'ready' });

function run(event, context) {
  // Callback-style handlers (three parameters) finish when they call back.
  if (handler.length >= 3) {
    return new Promise((resolve, reject) => {
      const result = handler(event, context, (error, value) => (error ? reject(error) : resolve(value)));
      if (result && typeof result.then === 'function') result.then(resolve, reject);
    });
  }
  return Promise.resolve().then(() => handler(event, context));
}

parentPort.on('message', async ({ id, event, awsRequestId, deadline }) => {
  if (initError) {
    parentPort.postMessage({ type: 'result', id, ok: false, error: initError });
    return;
  }
  const context = {
    functionName,
    functionVersion,
    invokedFunctionArn,
    memoryLimitInMB: String(memoryLimitInMB),
    awsRequestId,
    logGroupName,
    logStreamName,
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  };
  try {
    const value = await run(event, context);
    // Lambda serialises the result as JSON; undefined becomes null.
    const result = JSON.parse(JSON.stringify(value ?? null));
    parentPort.postMessage({ type: 'result', id, ok: true, result });
  } catch (error) {
    parentPort.postMessage({ type: 'result', id, ok: false, error: describe(error) });
  }
});
