// An s3:// cache URL read as Nix's S3 store reads it.
import { UserError } from '../errors.js';

/** Where `s3://BUCKET?region=&endpoint=&scheme=&profile=` points, read as Nix's S3 store reads it. */
export interface S3Location {
  bucket: string;
  /** Key prefix inside the bucket ('' or ending in '/'). */
  prefix: string;
  region: string;
  endpoint: string | undefined;
  profile: string | undefined;
}

export function parseS3Url(url: URL, env = process.env): S3Location {
  if (url.protocol !== 's3:' || url.hostname === '') {
    throw new UserError(
      `'${url.href}' is not an S3 cache URL`,
      'write it as s3://BUCKET?region=REGION (plus &endpoint=HOST:PORT&scheme=http for S3-compatible servers)',
    );
  }
  const params = url.searchParams;
  const endpointParam = params.get('endpoint') ?? undefined;
  // Nix takes a bare host[:port] plus scheme=, and also a full URL.
  const endpoint =
    endpointParam === undefined
      ? undefined
      : endpointParam.includes('://')
        ? endpointParam
        : `${params.get('scheme') ?? 'https'}://${endpointParam}`;
  const path = decodeURIComponent(url.pathname).replace(/^\/+|\/+$/g, '');
  return {
    bucket: url.hostname,
    prefix: path === '' ? '' : `${path}/`,
    region: params.get('region') ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
    endpoint,
    profile: params.get('profile') ?? undefined,
  };
}
