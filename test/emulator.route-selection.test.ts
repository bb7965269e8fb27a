/**
 * Route selection as API Gateway's rules for selection expressions state it:
 * several variables with literal text between them, `\$` escapes, and
 * `$default` for whatever does not evaluate to a route key.
 */
import { describe, expect, it } from 'vitest';
import { TemplateError } from '../scripts/aws-template.js';
import { compileSelectionExpression, selectRoute } from '../scripts/emulator/route-selection.js';

const keys = new Set(['$connect', '$disconnect', '$default', 'sendmessage', 'chat/send', 'chat/leave', 'v2-beta', '$literal']);

describe('selectRoute', () => {
  it.each([
    ['$request.body.action', '{"action":"sendmessage"}', 'sendmessage'],
    ['${request.body.action}', '{"action":"sendmessage"}', 'sendmessage'],
    ['${request.body.service}/${request.body.action}', '{"service":"chat","action":"send"}', 'chat/send'],
    ['${request.body.service}/${request.body.action}', '{"service":"chat","action":"leave"}', 'chat/leave'],
    ['${request.body.service}/${request.body.action}', '{"service":"chat"}', '$default'],
    ['${request.body.service}/${request.body.action}', '{"service":"chat","action":"fly"}', '$default'],
    ['${request.body.version}-beta', '{"version":"v2"}', 'v2-beta'],
    ['$request.body.meta.kind', '{"meta":{"kind":"sendmessage"}}', 'sendmessage'],
    ['$request.body.action', 'plain text', '$default'],
    ['$request.body.action', '{"action":{"nested":true}}', '$default'],
    ['$request.body.action', '{"action":"$connect"}', '$default'],
    ['\\$literal', '{}', '$default'],
  ])('%s on %s selects %s', (expression, body, expected) => {
    expect(selectRoute(expression, body, keys)).toBe(expected);
  });

  it('refuses, by name, a variable the emulator cannot evaluate', () => {
    expect(() => compileSelectionExpression('$request.header.x-route')).toThrow(TemplateError);
    expect(() => compileSelectionExpression('$context.routeKey')).toThrow('not "$context.routeKey"');
    expect(() => compileSelectionExpression('${request.body.action')).toThrow('without "}"');
  });
});
