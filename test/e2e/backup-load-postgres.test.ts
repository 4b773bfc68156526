import { backupUnderLoad } from './backup-scenario.js';

// PostgreSQL runs wherever MUSTER_TEST_PG_URL is set, as in the store tests.
if (process.env.MUSTER_TEST_PG_URL) backupUnderLoad('postgres');
