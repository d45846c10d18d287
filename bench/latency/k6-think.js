// Load A of bench/latency.sh for k6: 10 VUs, a GET, then 10 ms of think time.
import http from 'k6/http';
import { sleep } from 'k6';
export const options = { vus: 10, duration: `${__ENV.DURATION || 10}s` };
export default function () { http.get(`${__ENV.BASE}/json`); sleep(0.01); }
