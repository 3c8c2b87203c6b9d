// cachix.dhall laid out as cachix 1.11 writes it (see test/cachix-dhall.test.ts for the rules).
export const TOKEN =
  'eyJhbGciOiJIUzI1NiJ9.eyJqdGkiOiI0YjA5NmE2ZC1lMzQ0LTQ2YjYtYmU1Ny0wYjYyOTc5YzFjNjMiLCJzY29wZXMiOiJ0eCJ9.dGVzdC1zaWduYXR1cmUtbm90LXJlYWw';

/** The text of a cachix.dhall for this token, hostname and caches, byte for byte as cachix writes it (no final newline). */
export function cachixDhallText(token: string, hostname: string, caches: { name: string; secretKey: string }[]): string {
  const tokenLine = `{ authToken = "${token}"`.length <= 80 ? [`{ authToken = "${token}"`] : ['{ authToken =', `    "${token}"`];
  const cacheLines =
    caches.length === 0
      ? [', binaryCaches = [] : List { name : Text, secretKey : Text }']
      : [
          ', binaryCaches =',
          ...caches.flatMap((cache, index) => [
            `  ${index === 0 ? '[' : ','} { name = "${cache.name}"`,
            '    , secretKey =',
            `        "${cache.secretKey}"`,
            '    }',
          ]),
          '  ]',
        ];
  return [...tokenLine, `, hostname = "${hostname}"`, ...cacheLines, '}'].join('\n');
}
