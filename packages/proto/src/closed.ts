import { type ObjectOptions, type TSchema, Type } from '@sinclair/typebox';

/**
 * A map whose every key must match `keyPattern`. `patternProperties` alone only says what a
 * matching key holds: a key that matches no pattern would be let through with any JSON value.
 * So the map is closed as well, and such a key is refused.
 */
export function KeyedRecord<T extends TSchema>(keyPattern: string, value: T, options: ObjectOptions = {}) {
  return Type.Record(Type.String({ pattern: keyPattern }), value, {
    ...options,
    additionalProperties: false,
  });
}

/**
 * The body of a route that takes none: nothing, or `{}`. Anything else is refused, so a stray
 * body is never mistaken for a request (a `POST /v1/ca/rotate` with `{"x":1}` starts nothing).
 * Fastify validates a missing body as null.
 */
export const NoBody = Type.Unsafe<Record<string, never> | null>({
  type: ['object', 'null'],
  maxProperties: 0,
  additionalProperties: false,
  description: 'This route takes no body: send none, or {}.',
});
