// Prints the closing line CI reads ("N passed, N failed, N skipped") from vitest's JSON report.
// A typecheck failure counts as one failed test so a green line can never hide it.
import { readFileSync } from 'node:fs';

const [reportFile, typecheckFailed = '0'] = process.argv.slice(2);
let report;
try {
  report = JSON.parse(readFileSync(reportFile, 'utf8'));
} catch (error) {
  console.log(`no test report (${error.message})`);
  console.log('0 passed, 1 failed');
  process.exit(1);
}
const passed = report.numPassedTests ?? 0;
// A file that failed without a failing test (it did not load, or a hook threw) counts as one
// failure too: its tests never ran. Files with failing tests are already counted by those.
const brokenFiles = (report.testResults ?? []).filter(
  (file) => file.status === 'failed' && !(file.assertionResults ?? []).some((test) => test.status === 'failed'),
).length;
const failed = (report.numFailedTests ?? 0) + brokenFiles + Number(typecheckFailed);
const skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
if (typecheckFailed !== '0') console.log('typecheck failed (counted as 1 failure)');
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
