"""Adds the H2 server to a copy of the rig's nginx.conf: 127.0.0.1:8443, TLS with the given
certificate, HTTP/2 by ALPN (and HTTP/1.1 for clients that do not offer h2), the W1 answer.

    python3 add-server.py NGINX_CONF CERT KEY
"""

import sys

conf, cert, key = sys.argv[1:4]
text = open(conf).read()
server = f"""
    server {{
        listen 127.0.0.1:8443 ssl http2 backlog=4096;
        server_name localhost;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location /json {{
            default_type application/json;
            return 200 '{{"id":"42","name":"x"}}';
        }}
    }}
"""
end = text.rstrip().rfind("}")
open(conf, "w").write(text[:end] + server + "}\n")
