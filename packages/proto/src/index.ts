export * from './der.js';
export * from './duration.js';
export * from './names.js';
export * from './problem.js';
export * from './version.js';
export * from './wire.js';
