import { UserError, messageOf } from '../errors.js';
import { parsePublicKey, type PublicKey } from '../nix/signing.js';

/** A public key the user or a server gave, parsed, or one line saying what is wrong with it. */
export function parsePublicKeyFrom(text: string, what: string): PublicKey {
  try {
    return parsePublicKey(text);
  } catch (error) {
    throw new UserError(`${what} is not a Nix public key: ${messageOf(error)}`, 'a public key looks like NAME-1:<44 base64 characters>');
  }
}
