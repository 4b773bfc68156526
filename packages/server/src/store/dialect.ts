import type { ColumnDefinitionBuilder } from 'kysely';

/**
 * Everything that differs between SQLite and PostgreSQL lives here, as capabilities
 * the rest of the server asks about. Features never test which database they run on.
 */
export interface DialectTraits {
  readonly name: 'sqlite' | 'postgres';
  /** The column type of an auto-incrementing 64-bit key. */
  readonly autoIncrementType: 'integer' | 'bigserial';
  /** Adds what the dialect needs to make the column an auto-incrementing primary key. */
  autoIncrementKey(col: ColumnDefinitionBuilder): ColumnDefinitionBuilder;
  /** True when the error is a unique-constraint violation. */
  isUniqueViolation(err: unknown): boolean;
  /**
   * True when the store cannot take writes right now (read-only, full, gone, shutting down):
   * the change is refused with 503 and nothing happens, instead of a 500.
   */
  isUnavailable(err: unknown): boolean;
}

const codeOf = (err: unknown): string =>
  typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : '';

export const sqliteTraits: DialectTraits = {
  name: 'sqlite',
  autoIncrementType: 'integer',
  autoIncrementKey: (col) => col.primaryKey().autoIncrement(),
  isUniqueViolation: (err) =>
    typeof err === 'object' &&
    err !== null &&
    'code' in err &&
    (err.code === 'SQLITE_CONSTRAINT_UNIQUE' || err.code === 'SQLITE_CONSTRAINT_PRIMARYKEY'),
  isUnavailable: (err) =>
    /^SQLITE_(READONLY|IOERR|FULL|BUSY|LOCKED|CANTOPEN|CORRUPT|NOTADB|PERM)/.test(codeOf(err)),
};

export const postgresTraits: DialectTraits = {
  name: 'postgres',
  autoIncrementType: 'bigserial',
  autoIncrementKey: (col) => col.primaryKey(),
  isUniqueViolation: (err) => codeOf(err) === '23505',
  // 08: connection exceptions, 53: insufficient resources, 57P: shutdown, 25006: read-only
  // transaction; and the socket-level errors of a server that is not there.
  isUnavailable: (err) =>
    /^(08|53|57P|25006|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE)/.test(codeOf(err)) ||
    (err instanceof Error &&
      /Connection terminated|timeout exceeded when trying to connect/i.test(err.message)),
};
