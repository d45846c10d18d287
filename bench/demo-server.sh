# Sourced by the bench scripts: start_demo_server DIR starts "$BIN demo-server" on a free
# port on 127.0.0.1, pinned to CPU 0, and sets SERVER (its pid) and URL once it listens.
start_demo_server() {
    taskset -c 0 "$BIN" demo-server --port 0 > "$1/server.txt" &
    SERVER=$!
    for _ in $(seq 50); do grep -q http:// "$1/server.txt" 2>/dev/null && break; sleep 0.1; done
    URL=$(grep -o 'http://[0-9.:]*' "$1/server.txt")
}
