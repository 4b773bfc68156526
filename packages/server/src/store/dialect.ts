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
}

export const sqliteTraits: DialectTraits = {
  name: 'sqlite',
  autoIncrementType: 'integer',
  autoIncrementKey: (col) => col.primaryKey().autoIncrement(),
  isUniqueViolation: (err) =>
    typeof err === 'object' &&
    err !== null &&
    'code' in err &&
    (err.code === 'SQLITE_CONSTRAINT_UNIQUE' || err.code === 'SQLITE_CONSTRAINT_PRIMARYKEY'),
};

export const postgresTraits: DialectTraits = {
  name: 'postgres',
  autoIncrementType: 'bigserial',
  autoIncrementKey: (col) => col.primaryKey(),
  isUniqueViolation: (err) =>
    typeof err === 'object' && err !== null && 'code' in err && err.code === '23505',
};
