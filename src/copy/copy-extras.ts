// What the source keeps beside a path (build log, `<hash>.ls`, `debuginfo/` entries) goes along
// with it: the listing and debug-info entries before the narinfo, a debug-info entry pointing at
// the NAR under its name in the destination. A log or listing is decoded from however the source
// stored it and stored as the destination's URL asks (plain in a file cache, which Nix reads raw).
import type { BinaryCache } from '../caches/cache.js';
import { decodeStoredText } from '../maintain/stored-listing.js';
import { putExtra, type NarExtras } from '../push/cache-extras.js';
import { messageOf } from '../errors.js';
import type { NarInfo } from '../nix/narinfo.js';
import { hashPartOf } from '../nix/store-path.js';
import { readLimited } from '../util/read-limited.js';

const MAX_EXTRA_BYTES = 64 << 20;
const MAX_DEBUG_INFO_BYTES = 64 * 1024;

export interface ExtrasCopied {
  logs: number;
  listings: number;
  debugInfo: number;
}

async function readAll(cache: BinaryCache, name: string, limit: number): Promise<Buffer | undefined> {
  const stream = await cache.getFile(name);
  if (!stream) return undefined;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      stream.destroy();
      throw new Error(`${name} is larger than ${limit} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

export class ExtrasCopier {
  readonly copied: ExtrasCopied = { logs: 0, listings: 0, debugInfo: 0 };
  private readonly logsSeen = new Set<string>();
  /** What the source holds at its root and under log/, when it can list: no request for a file it lacks. */
  private knownFiles: Promise<Set<string> | undefined> | undefined;
  /** The source's debug-info entries by the NAR they point into (`../nar/…`), read once. */
  private debugInfoByArchive: Promise<Map<string, Array<{ name: string; json: Record<string, unknown> }>>> | undefined;

  constructor(
    private readonly source: BinaryCache,
    private readonly destination: BinaryCache & { putFile: NonNullable<BinaryCache['putFile']> },
    private readonly compressions: Pick<NarExtras, 'logCompression' | 'lsCompression'>,
    private readonly log: (line: string) => void,
    /** The source's root as already listed (copying everything): not listed a second time. */
    private readonly rootNames?: ReadonlySet<string>,
  ) {}

  /** `.ls` and `debuginfo/`, before the narinfo that makes the path visible. */
  async beforeNarInfo(sourceInfo: NarInfo, destinationUrl: string): Promise<void> {
    const listingName = `${hashPartOf(sourceInfo.storePath)}.ls`;
    const listing = (await this.mayHave(listingName)) ? await readAll(this.source, listingName, MAX_EXTRA_BYTES) : undefined;
    if (listing) {
      const text = Buffer.from(await decodeStoredText(listing));
      await putExtra(this.destination, listingName, text, 'application/json', this.compressions.lsCompression);
      this.copied.listings++;
    }
    const entries = (await this.debugInfo()).get(`../${sourceInfo.url}`) ?? [];
    for (const entry of entries) {
      await this.destination.putFile(entry.name, JSON.stringify({ ...entry.json, archive: `../${destinationUrl}` }), 'application/json');
      this.copied.debugInfo++;
    }
  }

  /** The build log of the path's deriver, once per derivation. */
  async afterNarInfo(sourceInfo: NarInfo): Promise<void> {
    const deriver = sourceInfo.deriver;
    if (!deriver) return;
    const name = `log/${deriver.slice(deriver.lastIndexOf('/') + 1)}`;
    if (this.logsSeen.has(name)) return;
    this.logsSeen.add(name);
    const log = (await this.mayHave(name)) ? await readAll(this.source, name, MAX_EXTRA_BYTES) : undefined;
    if (!log) return;
    const text = Buffer.from(await decodeStoredText(log));
    await putExtra(this.destination, name, text, 'text/plain; charset=utf-8', this.compressions.logCompression);
    this.copied.logs++;
  }

  private async mayHave(name: string): Promise<boolean> {
    this.knownFiles ??= this.listKnownFiles();
    const known = await this.knownFiles;
    return known === undefined || known.has(name);
  }

  private async listKnownFiles(): Promise<Set<string> | undefined> {
    if (!this.source.list) return undefined;
    try {
      const [root, logs] = await Promise.all([
        this.rootNames ? [...this.rootNames] : this.source.list('').then((files) => files.map((file) => file.name)),
        this.source.list('log/'),
      ]);
      return new Set([...root, ...logs.map((file) => file.name)]);
    } catch {
      // Asked file by file instead.
      return undefined;
    }
  }

  private debugInfo(): Promise<Map<string, Array<{ name: string; json: Record<string, unknown> }>>> {
    this.debugInfoByArchive ??= this.readDebugInfo();
    return this.debugInfoByArchive;
  }

  private async readDebugInfo(): Promise<Map<string, Array<{ name: string; json: Record<string, unknown> }>>> {
    const byArchive = new Map<string, Array<{ name: string; json: Record<string, unknown> }>>();
    if (!this.source.list) return byArchive;
    let entries;
    try {
      entries = await this.source.list('debuginfo/');
    } catch (error) {
      this.log(`note: the debug-info index of ${this.source.description} cannot be listed (${messageOf(error)}): it is not copied`);
      return byArchive;
    }
    for (const entry of entries) {
      const stream = await this.source.getFile(entry.name);
      if (!stream) continue;
      try {
        const json = JSON.parse(await readLimited(stream, MAX_DEBUG_INFO_BYTES, () => new Error('too large'))) as Record<string, unknown>;
        if (typeof json.archive !== 'string') continue;
        const list = byArchive.get(json.archive) ?? [];
        list.push({ name: entry.name, json });
        byArchive.set(json.archive, list);
      } catch {
        // Not an entry Nix could use either.
      }
    }
    return byArchive;
  }
}
