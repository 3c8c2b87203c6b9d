// What `cachix --version` prints. Tools that drive cachix (cachix-action) read the second word as
// cachix's version and turn features on by it (the daemon from 1.7.0), so that word is the cachix
// release whose command line we implement; our own version follows in parentheses.

/** The cachix release whose commands, flags and daemon protocol this client implements. */
export const CACHIX_COMPATIBLE_VERSION = '1.11.1';

/** This package's own version (package.json's `version`; a test keeps them equal). */
export const OWN_VERSION = '0.1.0';

export const VERSION_LINE = `cachix ${CACHIX_COMPATIBLE_VERSION} (any-cache edition ${OWN_VERSION})`;
