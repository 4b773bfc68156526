export { type AppDeps, buildApp, type MusterApp } from './app.js';
export * from './backup/index.js';
export { type Clock, type IdSource, ManualClock, randomIds, systemClock } from './clock.js';
export {
  isLoopback,
  parseHostPort,
  SERVER_SETTINGS,
  type ServerConfig,
  serverConfigFrom,
} from './config.js';
export {
  type LoadedServerSettings,
  loadServerConfig,
  loadServerSettings,
  SERVER_COMMAND_SETTINGS,
} from './config-load.js';
export { AppError, ConfigError } from './errors.js';
export { appendEntries, type NewEntry } from './features/ledger/log.js';
export { LedgerService } from './features/ledger/service.js';
export { limitsFor } from './http/shared-rate-limit.js';
export { createLogger } from './logger.js';
export { dataDirPaths, prepareDataDir, type ServerIdentity } from './pki/datadir.js';
export { type RunningServer, startServer } from './server.js';
export { openStore, type Store } from './store/db.js';
