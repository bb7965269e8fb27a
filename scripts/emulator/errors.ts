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

/** A port to listen on is taken by another process. `flag` names the command line flag that chose it. */
export class PortInUseError extends CloudsocketError {
  constructor(
    readonly port: number,
    flag?: { command: string; name: string },
  ) {
    super(
      'port_in_use',
      flag ? `${flag.command}: port ${port} is already in use (${flag.name})` : `port ${port} is already in use; pick another (0 picks a free one)`,
    );
  }
}
