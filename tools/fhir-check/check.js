#!/usr/bin/env node
// Validates FHIR R4 resources (JSON files named on the command line, or one on stdin) with the
// `fhir` package, an implementation independent of safegate. Prints one JSON line per input:
// {"file", "valid", "errors": [...]} and exits 1 if any input has an error-level message.
// Test-only: install with `npm ci` in this folder (node_modules is not committed).
'use strict';
const fs = require('fs');
const { Fhir } = require('fhir');

const fhir = new Fhir();
const inputs = process.argv.length > 2 ? process.argv.slice(2) : ['/dev/stdin'];
let failed = false;
for (const file of inputs) {
  let resource;
  try {
    resource = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    console.log(JSON.stringify({ file, valid: false, errors: ['not JSON: ' + e.message] }));
    failed = true;
    continue;
  }
  // errorOnUnexpected: a property R4 does not define is an error, not a silent pass.
  const result = fhir.validate(resource, { errorOnUnexpected: true });
  const errors = result.messages
    .filter((m) => m.severity === 'error')
    .map((m) => `${m.location}: ${m.message}`);
  if (!result.valid || errors.length > 0) failed = true;
  console.log(JSON.stringify({ file, valid: result.valid && errors.length === 0, errors }));
}
process.exit(failed ? 1 : 0);
