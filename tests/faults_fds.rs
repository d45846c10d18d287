//! Fault suite: descriptors. In a file of its own so that no other test's sockets share
//! the process while it counts them.

mod common;

use common::{failures_of, run};

#[test]
fn two_thousand_users_against_a_refused_port_leak_no_descriptors() {
    // Bound but not listening: the port stays ours, and every connect is refused.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    let refused = format!(
        "http://{}",
        socket.local_addr().unwrap().as_socket().unwrap()
    );
    let fds = || std::fs::read_dir("/proc/self/fd").unwrap().count();
    let before = fds();
    let out = run(r#"fn t() { http::get("/x"); }"#, &refused, |a| {
        a.flags.users = Some(2000);
        a.flags.spawn_rate = Some(100_000.0);
        a.flags.iterations = Some(20_000);
    });
    assert_eq!(failures_of(&out, "connect"), 20_000);
    let after = fds();
    assert!(
        after <= before + 8,
        "descriptors: {before} before, {after} after"
    );
}
