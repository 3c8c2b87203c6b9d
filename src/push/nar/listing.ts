// The listing Nix writes beside a NAR (`<hash>.ls`) and its debug-info index, taken from the NAR
// bytes the push reads anyway: no second walk of the tree, no second read of a file.
import { NarListingBuilder, type DebugInfoMember } from '../../nix/nar/listing.js';
import { NarParser } from '../../nix/nar/parser.js';

/** Plain data, so a small-NAR worker can hand it to the main thread. */
export interface NarListing {
  /** The `.ls` text. */
  json: string;
  debugInfo: DebugInfoMember[];
}

export class NarLister {
  private readonly builder = new NarListingBuilder();
  private readonly parser = new NarParser(this.builder);

  constructor() {
    this.builder.attach(this.parser);
  }

  write(chunk: Buffer): void {
    this.parser.write(chunk);
  }

  end(): NarListing {
    this.parser.end();
    return { json: this.builder.listingJson(), debugInfo: this.builder.debugInfo() };
  }
}
