export { AgentFatalError, type AgentHooks, type AgentOptions, runAgent } from './agent.js';
export {
  AGENT_COMMAND_SETTINGS,
  AGENT_SETTINGS,
  type AgentConfig,
  agentConfigFrom,
  DEFAULT_RENEW_FRACTION,
  readAgentSettings,
} from './config.js';
export { installGrant, type RequestFile, readGrantFile, writeRequestFile } from './grant.js';
export { identityPaths, loadIdentity, type StoredIdentity } from './identity.js';
export { DataDirInUseError, LOCK_FILE, lockDataDir } from './lock.js';
export { hostFacts, MetricsSampler } from './metrics.js';
export { fetchPinnedCa, PinMismatchError } from './pinning.js';
export { BACKDATE_MS, renewalTime, ServerTime, validityOf } from './renewal.js';
export type { OnRequested } from './request.js';
export { Witness, type WitnessCheck } from './witness.js';
