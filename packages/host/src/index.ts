export * from './backoff.js';
export * from './config-file.js';
export * from './files.js';
export * from './http.js';
export * from './log.js';
export * from './pki.js';
export * from './settings.js';
export * from './x509.js';
