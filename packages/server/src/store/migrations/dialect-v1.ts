import type { ColumnDefinitionBuilder } from 'kysely';

/**
 * The dialect differences the released migrations rely on, copied from store/dialect.ts as it
 * was at 0.1.0 and frozen: a migration must build the same schema in a year as on the day it
 * shipped, whatever store/dialect.ts becomes. Never edit this file once released; a migration
 * that needs something else gets a new helper beside it.
 */
export type MigrationDialect = 'sqlite' | 'postgres';

/** The column type of an auto-incrementing 64-bit key. */
export function autoIncrementType(dialect: MigrationDialect): 'integer' | 'bigserial' {
  return dialect === 'sqlite' ? 'integer' : 'bigserial';
}

/** What the dialect needs to make the column an auto-incrementing primary key. */
export function autoIncrementKey(dialect: MigrationDialect) {
  return (col: ColumnDefinitionBuilder): ColumnDefinitionBuilder =>
    dialect === 'sqlite' ? col.primaryKey().autoIncrement() : col.primaryKey();
}
