// Where the daemon tests have always found these: the one helper of each kind lives beside its kind.
export { startCachix, type RunningCachix } from './cli.js';
export { residentBytes } from './peak-rss.js';
export { waitUntil } from './wait.js';
