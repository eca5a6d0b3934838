// Compose the test-bed subgraphs with The Guild's federation composition.
// usage: node compose.mjs <dir with node_modules>   (stdin: [{name, url, sdl}])
// stdout: {"supergraphSdl": "..."} or {"errors": ["..."]}
import { createRequire } from 'node:module';
import { join } from 'node:path';

const require = createRequire(join(process.argv[2], 'package.json'));
const { composeServices } = require('@theguild/federation-composition');
const { parse } = require('graphql');

let input = '';
for await (const chunk of process.stdin) input += chunk;
const services = JSON.parse(input).map(({ name, url, sdl }) => ({
  name,
  url,
  typeDefs: parse(sdl),
}));
const result = composeServices(services);
if (result.errors && result.errors.length) {
  process.stdout.write(JSON.stringify({ errors: result.errors.map((e) => e.message) }));
} else {
  process.stdout.write(JSON.stringify({ supergraphSdl: result.supergraphSdl }));
}
