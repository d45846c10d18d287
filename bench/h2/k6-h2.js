// H2: the W1 request (GET /json) over HTTPS; k6 negotiates HTTP/2 by ALPN by itself.
import http from 'k6/http';

export const options = { insecureSkipTLSVerify: true };

export default function () {
  http.get(`${__ENV.BASE}/json`);
}
