// W3 for k6 with GJSON selectors (r.json(selector)): the same request and checks as
// k6-w3.js, but k6 extracts the two values without building the whole object.
import http from 'k6/http';
import { check } from 'k6';
const url = `${__ENV.BASE}${__ENV.W3_PATH || '/w3'}`;
const params = { headers: { 'Content-Type': 'application/json' } };
export default function () {
  const r = http.post(url, JSON.stringify({ name: 'x', qty: 1 }), params);
  check(r, { 'name is x, 20 items': (x) => x.json('name') === 'x' && x.json('items.#') === 20 });
}
export function handleSummary(data) {
  const reqs = data.metrics.http_reqs ? data.metrics.http_reqs.values.count : 0;
  const failed = data.metrics.checks ? data.metrics.checks.values.fails : 0;
  return { stdout: `BENCH requests=${reqs} failures=${failed}\n` };
}
