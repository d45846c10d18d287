// Load B of bench/latency.sh for k6: 50 VUs, GETs back to back.
import http from 'k6/http';
export const options = { vus: 50, duration: `${__ENV.DURATION || 10}s` };
export default function () { http.get(`${__ENV.BASE}/json`); }
