/**
 * Errors of the emulator itself (its input, not the emulated cloud's answers,
 * which are HTTP responses in the AWS shape, see aws-responses.ts). A template
 * it cannot use is aws-template.ts's TemplateError.
 */
import { CloudsocketError } from '../../shared/errors.js';

/** A function's handler file is not in the dist directory: the handlers were not built. */
export class HandlerNotBuiltError extends CloudsocketError {
  constructor(file: string) {
    super('handler_not_built', `${file} is missing; run \`cloudsocket build\` first`);
  }
}

/** The emulator's port is taken by another process. */
export class PortInUseError extends CloudsocketError {
  constructor(port: number) {
    super('port_in_use', `port ${port} is already in use; pick another (0 picks a free one)`);
  }
}
