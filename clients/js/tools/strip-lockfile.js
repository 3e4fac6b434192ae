// strip-lockfile.js drops the "funding" addresses npm writes into
// package-lock.json. With omit-lockfile-registry-resolved (.npmrc) there is
// no download address in it; funding is the only host name left, and npm
// ci does not read it. Run it after every change of devDependencies:
// `npm install && npm run lockfile` (test/package.test.js checks).
import { readFileSync, writeFileSync } from 'node:fs';

const path = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(path, 'utf8'));
for (const entry of Object.values(lock.packages)) delete entry.funding;
writeFileSync(path, JSON.stringify(lock, null, 2) + '\n');
