// Test-time only: runs a batch of simulations through @cloud-copilot/iam-simulate.
// stdin: a JSON array of Simulation objects; stdout: {"version", "results": [{result} | {error}]}.
// One process per test session (tests/differential/test_differential.py); never shipped.
'use strict';
const fs = require('fs');
const path = require('path');
const { runSimulation } = require('@cloud-copilot/iam-simulate');

const manifest = path.join(__dirname, 'node_modules', '@cloud-copilot', 'iam-simulate', 'package.json');
const version = JSON.parse(fs.readFileSync(manifest, 'utf8')).version;

async function main() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const simulations = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  const results = [];
  for (const simulation of simulations) {
    try {
      const response = await runSimulation(simulation, {});
      results.push(
        response.resultType === 'error' ? { error: response.errors } : { result: response.overallResult }
      );
    } catch (err) {
      results.push({ error: String(err) });
    }
  }
  process.stdout.write(JSON.stringify({ version, results }));
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err));
  process.exit(1);
});
