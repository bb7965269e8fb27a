// Module resolution hooks for an emulated Lambda environment: Lambda's
// Node.js runtimes (nodejs18.x and later) provide the AWS SDK v3 to handlers
// that do not bundle it. Where a handler's own folders hold no @aws-sdk or
// @smithy package, it is resolved from the emulator's installation instead,
// as the runtime resolves it from its own.
let providedFrom;

export function initialize(data) {
  providedFrom = data.parentURL;
}

export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context);
  } catch (error) {
    if (error?.code !== 'ERR_MODULE_NOT_FOUND' || !/^@(aws-sdk|smithy)\//.test(specifier) || !providedFrom) throw error;
    return nextResolve(specifier, { ...context, parentURL: providedFrom });
  }
}
