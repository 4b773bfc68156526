export { AgentFatalError, type AgentHooks, runAgent } from './agent.js';
export { AGENT_SETTINGS, type AgentConfig, agentConfigFrom } from './config.js';
export { identityPaths, loadIdentity, type StoredIdentity } from './identity.js';
export { hostFacts, MetricsSampler } from './metrics.js';
export { fetchPinnedCa, PinMismatchError } from './pinning.js';
export { Witness, type WitnessCheck } from './witness.js';
