// W3 for k6: POST a small JSON body, parse the ~2 KB JSON answer, check two fields.
// Prints `BENCH requests=N failures=N` (failed checks count as failures) for the rig.
import http from 'k6/http';
import { check } from 'k6';
const url = `${__ENV.BASE}${__ENV.W3_PATH || '/w3'}`;
const params = { headers: { 'Content-Type': 'application/json' } };
export default function () {
  const r = http.post(url, JSON.stringify({ name: 'x', qty: 1 }), params);
  const j = r.json();
  check(r, { 'name is x, 20 items': () => j.name === 'x' && j.items.length === 20 });
}
export function handleSummary(data) {
  const reqs = data.metrics.http_reqs ? data.metrics.http_reqs.values.count : 0;
  const failed = data.metrics.checks ? data.metrics.checks.values.fails : 0;
  return { stdout: `BENCH requests=${reqs} failures=${failed}\n` };
}
