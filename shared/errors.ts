/**
 * Every error of the core a client or an operator can see has a class here
 * with a stable string `code`; an app declares its own by extending
 * ProtocolError (the chat's are in apps/chat). docs/errors.md lists them all.
 */

/** Close codes of RFC 6455 and the protocol, named so call sites read as intent. */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  unsupportedData: 1003,
  invalidPayload: 1007,
  policyViolation: 1008,
  messageTooBig: 1009,
  serverError: 1011,
  serviceRestart: 1012,
  /** Replaced by a resumed connection of the same session; final, clients do not reconnect. */
  sessionReplaced: 4001,
} as const;

export class CloudsocketError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/**
 * An error answered to the offending client with an `error` frame. It never
 * reaches anyone else and never closes the connection by itself.
 */
export class ProtocolError extends CloudsocketError {}

export class InvalidMessageError extends ProtocolError {
  constructor(message: string) {
    super('invalid_message', message);
  }
}

export class UnknownTypeError extends ProtocolError {
  constructor(type: string) {
    super('unknown_type', `unknown message type "${type.slice(0, 64)}"`);
  }
}

export class RateLimitedError extends ProtocolError {
  constructor() {
    super('rate_limited', 'too many messages, slow down');
  }
}

/**
 * The last frame before a rate-limit close (1008). It says why, because on AWS
 * the close cannot: DeleteConnection takes no close code, and API Gateway
 * closes with 1000. Clients that see it do not reconnect.
 */
export class ClosedForAbuseError extends ProtocolError {
  static readonly code = 'closed_for_abuse';
  constructor() {
    super(ClosedForAbuseError.code, 'too many messages refused in a row; the connection is being closed');
  }
}

/**
 * The sender's frame could not be handled: the registry was unreachable or a
 * handler failed unexpectedly. The connection stays open and the frame may be
 * sent again; what went wrong is in the server's log only.
 */
export class UnavailableError extends ProtocolError {
  constructor() {
    super('unavailable', 'the server could not handle this message; try again later');
  }
}

/**
 * The last frame a connection gets before its close with 4001: another
 * connection resumed its session and holds its clientId now. On AWS the close
 * itself says 1000 (DeleteConnection takes no code), so this frame is what tells.
 */
export class SessionReplacedError extends ProtocolError {
  static readonly code = 'session_replaced';
  constructor() {
    super(SessionReplacedError.code, 'another connection resumed this session; this one is closed');
  }
}

export class InvalidRoomError extends ProtocolError {
  constructor() {
    super('invalid_room', 'room must be 1-32 letters, digits, "_" or "-"');
  }
}

/**
 * Room state (shared/room-state.ts) refused a key, a value or an increment.
 * They are protocol errors: a handler that lets one through answers its
 * sender with an `error` frame, as a value the client sent may be the cause.
 */
export class InvalidStateKeyError extends ProtocolError {
  constructor(maxChars: number) {
    super('invalid_state_key', `a state key must be 1-${maxChars} letters, digits, "_", "-", "." or ":"`);
  }
}

export class InvalidStateValueError extends ProtocolError {
  constructor(message: string) {
    super('invalid_state_value', message);
  }
}

export class StateValueTooLargeError extends ProtocolError {
  constructor(maxBytes: number) {
    super('state_value_too_large', `a state value must be at most ${maxBytes} bytes of JSON`);
  }
}

export class StateFullError extends ProtocolError {
  constructor(maxKeys: number) {
    super('state_full', `the room's state already holds ${maxKeys} keys; delete one first`);
  }
}

export class StateNotIntegerError extends ProtocolError {
  constructor(key: string) {
    super('state_not_integer', `state "${key}" does not hold a whole number, so it cannot be incremented`);
  }
}

export class StateOutOfRangeError extends ProtocolError {
  constructor(key: string) {
    super('state_out_of_range', `state "${key}" would leave the range of safe integers (±${Number.MAX_SAFE_INTEGER})`);
  }
}

/**
 * `ctx.close` with a code a server may not send, or a reason over the 123
 * bytes a close frame holds: the app's mistake, refused before either target
 * acts (as any error a handler lets through, the sender is told `unavailable`).
 */
export class InvalidCloseError extends CloudsocketError {
  constructor(why: string) {
    super('invalid_close', `ctx.close: ${why}`);
  }
}

/**
 * An `authenticate` hook admitted with an identity no registry can store:
 * not a JSON object, or too large. The app's mistake, so the client is
 * answered as for a hook that throws (500 `internal_error`); this names it in the log.
 */
export class InvalidIdentityError extends CloudsocketError {
  constructor(why: string) {
    super('invalid_identity', `authenticate returned an identity ${why}`);
  }
}

/**
 * A refused WebSocket handshake. Where the platform can refuse (both of ours
 * can), the client sees the HTTP status and a JSON body `{code, message}`.
 */
export class HandshakeError extends CloudsocketError {
  readonly status: number;
  constructor(status: number, code: string, message: string) {
    super(code, message);
    this.status = status;
  }
}

export class UnauthorizedError extends HandshakeError {
  constructor(reason = 'authentication failed') {
    super(401, 'unauthorized', reason);
  }
}

export class ForbiddenOriginError extends HandshakeError {
  constructor(origin: string) {
    super(403, 'forbidden_origin', `origin ${origin.slice(0, 200)} is not allowed`);
  }
}

export class InvalidClientIdError extends HandshakeError {
  constructor() {
    super(400, 'invalid_client_id', 'clientId must be 1-32 letters, digits, "_" or "-"');
  }
}

export class InvalidRoomHandshakeError extends HandshakeError {
  constructor() {
    super(400, 'invalid_room', 'room must be 1-32 letters, digits, "_" or "-"');
  }
}

export class InvalidSinceError extends HandshakeError {
  constructor() {
    super(400, 'invalid_since', 'since must be the highest seq seen, a whole number of 0 or more');
  }
}

/**
 * Why a resume was not honoured, told to the client in a `resume_failed`
 * frame before it is greeted as an ordinary new connection.
 */
export class ResumeError extends CloudsocketError {}

export class ResumeTokenInvalidError extends ResumeError {
  constructor(message = 'the resume token is not valid here') {
    super('resume_token_invalid', message);
  }
}

export class ResumeTokenExpiredError extends ResumeError {
  constructor() {
    super('resume_token_expired', 'the resume token has expired');
  }
}

export class ResumeWrongRoomError extends ResumeError {
  constructor() {
    super('resume_wrong_room', 'the resume token belongs to another room');
  }
}

export class ResumeGapError extends ResumeError {
  constructor() {
    super('resume_gap', 'the room no longer holds every frame since the one given');
  }
}

export class ResumeNameTakenError extends ResumeError {
  constructor() {
    super('resume_name_taken', 'another session holds this clientId now');
  }
}

/** The registry cannot hand a clientId from one connection to another (it has no `replace`), and the old connection still holds it. */
export class ResumeUnsupportedError extends ResumeError {
  constructor() {
    super('resume_unsupported', 'this server cannot take the clientId back from a connection that is still registered');
  }
}

/** A setting (environment variable or CLI flag) that cannot be used as given. */
export class ConfigError extends CloudsocketError {
  constructor(message: string) {
    super('invalid_config', message);
  }
}
