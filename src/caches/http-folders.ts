/**
 * Makes missing folders on a WebDAV server with MKCOL (RFC 4918, 9.3), for servers that create
 * none on PUT: rclone's `serve webdav` and Apache's mod_dav answer a PUT into a missing folder
 * with 404 or 409, as nginx does without `create_full_put_path`. Asked only after such a PUT, so
 * a server that makes folders itself never sees a MKCOL.
 */

/** Sends `MKCOL folderPath` (an absolute URL path ending in '/') and gives the status it answered. */
export type SendMkcol = (folderPath: string) => Promise<number>;

/** What the last MKCOL of a folder answered, for the error when the PUT still fails. */
export interface FolderAttempt {
  folderPath: string;
  status: number;
}

/** The folder holding `path` ('/a/b/c' and '/a/b/c/' give '/a/b/'), or undefined for the root. */
export function parentFolderOf(path: string): string | undefined {
  const trimmed = path.endsWith('/') ? path.slice(0, -1) : path;
  const slash = trimmed.lastIndexOf('/');
  return slash <= 0 ? undefined : trimmed.slice(0, slash + 1);
}

export class WebDavFolders {
  /** MKCOLs in flight, so the NARs of one push that all met the same missing folder share one. */
  private readonly inFlight = new Map<string, Promise<FolderAttempt>>();

  constructor(private readonly mkcol: SendMkcol) {}

  /** Makes the folder holding the file at `filePath` (an absolute URL path) and any missing above it. */
  async makeParentOf(filePath: string): Promise<FolderAttempt | undefined> {
    const folder = parentFolderOf(filePath);
    return folder === undefined ? undefined : this.make(folder);
  }

  private make(folderPath: string): Promise<FolderAttempt> {
    let attempt = this.inFlight.get(folderPath);
    if (!attempt) {
      attempt = this.makeNow(folderPath).finally(() => this.inFlight.delete(folderPath));
      this.inFlight.set(folderPath, attempt);
    }
    return attempt;
  }

  private async makeNow(folderPath: string): Promise<FolderAttempt> {
    const status = await this.mkcol(folderPath);
    // 409: its parent is missing too (RFC 4918); make that first, then this one once more.
    // Any other answer (2xx made; 405 exists or not allowed; 403 refused) ends here: the PUT
    // that is tried again says whether the folder is there.
    const parent = status === 409 ? parentFolderOf(folderPath) : undefined;
    if (parent === undefined) return { folderPath, status };
    await this.make(parent);
    return { folderPath, status: await this.mkcol(folderPath) };
  }
}
