// Compose many subgraph sets with The Guild's federation composition, in one process.
// usage: node compose_reference.mjs <dir with node_modules>
// stdin: [[{name, url, sdl}, ...], ...]   stdout: [{supergraphSdl} | {errors: [{code, message}]}, ...]
import { createRequire } from 'node:module';
import { join } from 'node:path';

const require = createRequire(join(process.argv[2], 'package.json'));
const { composeServices } = require('@theguild/federation-composition');
const { parse } = require('graphql');

let input = '';
for await (const chunk of process.stdin) input += chunk;
const results = JSON.parse(input).map((services) => {
  const result = composeServices(
    services.map(({ name, url, sdl }) => ({ name, url, typeDefs: parse(sdl) })),
  );
  if (result.errors && result.errors.length) {
    return {
      errors: result.errors.map((e) => ({ code: e.extensions?.code ?? null, message: e.message })),
    };
  }
  return { supergraphSdl: result.supergraphSdl };
});
process.stdout.write(JSON.stringify(results));
