//! A TCP stream that knows when the bytes it reads reached the socket: the kernel stamps
//! every packet it receives (`SO_TIMESTAMPNS`), and each read takes the stamp with the bytes
//! (`recvmsg`'s control message). A response's latency can then end when its last bytes
//! arrived, not when the user's task happened to run next: the time the response waited
//! for the generator (other users' script code, a busy worker) is the generator's, and is
//! counted apart as queueing.
//!
//! Reads go through tokio's readiness API on the raw socket, as `TcpStream`'s own reads do:
//! one `recvmsg` where there was one `recv`, and no clock read (the stamp is converted once
//! per response, by the client).

use std::cell::Cell;
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// When the bytes of a read reached the socket: the kernel's stamp, on the wall clock.
/// Converted to the monotonic clock the other marks use only when a response is done
/// ([`Arrival::at`]), once, rather than on every read.
#[derive(Debug, Clone, Copy)]
pub struct Arrival(
    /// Nanoseconds since the Unix epoch.
    i64,
);

impl Arrival {
    /// The arrival on the monotonic clock, given the time now on it: no later than `now`.
    pub fn at(self, now: Instant) -> Instant {
        let clocks = Clocks::near(now);
        let after = self.0.saturating_sub(clocks.wall);
        let at = if after >= 0 {
            clocks.mono + Duration::from_nanos(after as u64)
        } else {
            let before = Duration::from_nanos(after.unsigned_abs());
            clocks.mono.checked_sub(before).unwrap_or(clocks.mono)
        };
        at.min(now)
    }

    /// How long after `earlier` this arrival came (zero if it did not).
    pub fn since(self, earlier: Arrival) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0).max(0) as u64)
    }
}

/// The monotonic clock and the wall clock read together.
///
/// The difference between them changes only when the wall clock is stepped (NTP's slewing
/// moves both alike), so a reading serves a thread's next conversions too (one a response):
/// at full load one wall-clock read per 64 responses, not one per response. A step is seen
/// within 64.
#[derive(Clone, Copy)]
struct Clocks {
    mono: Instant,
    /// Nanoseconds since the Unix epoch.
    wall: i64,
}

impl Clocks {
    const REUSES: u32 = 64;

    fn near(now: Instant) -> Self {
        thread_local! {
            static LAST: Cell<(Option<Clocks>, u32)> = const { Cell::new((None, 0)) };
        }
        LAST.with(|last| match last.get() {
            (Some(clocks), left @ 1..) => {
                last.set((Some(clocks), left - 1));
                clocks
            }
            _ => {
                let clocks = Clocks {
                    mono: now,
                    wall: wall_clock_ns(),
                };
                last.set((Some(clocks), Self::REUSES));
                clocks
            }
        })
    }
}

/// The wall clock in nanoseconds since the Unix epoch, the kernel stamps' clock: one vDSO
/// call, with none of `SystemTime`'s checked arithmetic on the way to a number.
fn wall_clock_ns() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime fills the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &raw mut ts) };
    timespec_ns(ts)
}

fn timespec_ns(ts: libc::timespec) -> i64 {
    ts.tv_sec
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec)
}

/// A `TcpStream` whose reads carry the kernel's receive time.
pub struct Stamped {
    tcp: TcpStream,
    /// The last read's arrival; `None` before any, or where the kernel gave no stamp.
    last: Option<Arrival>,
}

impl Stamped {
    /// Asks the kernel to stamp what this socket receives. Where it cannot (not Linux, an
    /// unusual socket), reads simply come without stamps and the caller times as before.
    pub fn new(tcp: TcpStream) -> Self {
        enable_timestamps(tcp.as_raw_fd());
        Self { tcp, last: None }
    }

    /// When the bytes of the last read reached the socket.
    pub fn arrival(&self) -> Option<Arrival> {
        self.last
    }

    /// Forgets the last read's arrival (a new request begins).
    pub fn forget(&mut self) {
        self.last = None;
    }

    #[cfg(test)]
    pub fn get_ref(&self) -> &TcpStream {
        &self.tcp
    }
}

fn enable_timestamps(fd: RawFd) {
    let on: libc::c_int = 1;
    // SAFETY: a valid socket descriptor and a pointer to an int of the given size.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&raw const on).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Makes sure the kernel stamps received packets from now on, before the first request.
///
/// The kernel stamps packets only while some socket asks for it, and turns stamping on
/// through deferred work: the first packets after the first socket asks can arrive
/// unstamped (those responses would be timed by the task). This opens a loopback TCP pair
/// that asks, and keeps it for the life of the process (keeping stamping on), after
/// checking, a packet at a time, that stamps come. Once per process; bounded.
pub fn warm_up() {
    static DONE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        let _ = keep_stamping_on();
    });
}

fn keep_stamping_on() -> io::Result<()> {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let client = std::net::TcpStream::connect(listener.local_addr()?)?;
    let (mut server, _) = listener.accept()?;
    enable_timestamps(client.as_raw_fd());
    let mut byte = [std::mem::MaybeUninit::new(0u8); 1];
    for _ in 0..200 {
        server.write_all(b"x")?;
        let (_, stamp) = recv_stamped(client.as_raw_fd(), &mut byte)?;
        if stamp.is_some() {
            break;
        }
        // The deferred work that turns stamping on has not run yet.
        std::thread::sleep(Duration::from_millis(1));
    }
    // Kept open: stamping stays on while a socket asks for it.
    std::mem::forget(client);
    std::mem::forget(server);
    Ok(())
}

/// One `recvmsg` into `dst`: the bytes read and the kernel's stamp of the newest packet
/// among them (wall clock), if it gave one.
fn recv_stamped(
    fd: RawFd,
    dst: &mut [std::mem::MaybeUninit<u8>],
) -> io::Result<(usize, Option<Arrival>)> {
    // Room for one SCM_TIMESTAMPNS (a timespec) with its header, aligned for cmsghdr.
    let mut control = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: dst.as_mut_ptr().cast(),
        iov_len: dst.len(),
    };
    // SAFETY: msghdr is plain data; zero is a valid empty value for every field.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of_val(&control) as _;
    // SAFETY: `msg` points at a live iovec over `dst` and at `control`, both outliving the
    // call; the kernel writes at most their lengths.
    // The system call itself: libc's wrapper adds a cancellation point per read.
    let n = unsafe { libc::syscall(libc::SYS_recvmsg, fd, &raw mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut stamp = None;
    // SAFETY: the CMSG_* helpers walk the control buffer the kernel filled, within
    // `msg_controllen`; the timestamp is read unaligned from inside it.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS
            {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                stamp = Some(Arrival(timespec_ns(ts)));
            }
            cmsg = libc::CMSG_NXTHDR(&raw const msg, cmsg);
        }
    }
    Ok((n as usize, stamp))
}

impl AsyncRead for Stamped {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let fd = this.tcp.as_fd().as_raw_fd();
        loop {
            // Readiness first, as tokio's own reads: a read tried on a socket not ready
            // would build and drop an error every time.
            ready!(this.tcp.poll_read_ready(cx))?;
            // SAFETY: `recv_stamped` only writes into the unfilled part; `assume_init` below
            // covers exactly the bytes it reported.
            let dst = unsafe { buf.unfilled_mut() };
            let room = dst.len();
            let mut drained = None;
            let read = this.tcp.try_io(Interest::READABLE, || {
                let (n, stamp) = recv_stamped(fd, dst)?;
                if 0 < n && n < room {
                    // A read that did not fill the buffer emptied the socket (epoll is
                    // edge-triggered): as tokio's own reads do, the reactor forgets the
                    // readiness now, which only a `WouldBlock` from here tells it. Else the
                    // next poll (the idle check before the next request) would make a
                    // system call just to learn the socket is empty.
                    drained = Some((n, stamp));
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok((n, stamp))
            });
            let (n, stamp) = match (read, drained) {
                (_, Some(done)) | (Ok(done), None) => done,
                (Err(e), None) if e.kind() == io::ErrorKind::WouldBlock => continue,
                (Err(e), None) => return Poll::Ready(Err(e)),
            };
            // SAFETY: the kernel wrote `n` bytes at the start of the unfilled part.
            unsafe { buf.assume_init(n) };
            buf.advance(n);
            if n > 0 {
                this.last = stamp;
            }
            return Poll::Ready(Ok(()));
        }
    }
}

impl AsyncWrite for Stamped {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Bytes that sat in the socket while nobody read are stamped when they arrived, not
    /// when they were read.
    #[tokio::test]
    async fn a_read_says_when_its_bytes_arrived_not_when_it_ran() {
        warm_up();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        let mut stamped = Stamped::new(client);
        server.write_all(b"hello").await.unwrap();
        let sent = Instant::now();
        // The generator is busy elsewhere: the bytes wait in the socket.
        std::thread::sleep(Duration::from_millis(50));
        let mut buf = [0u8; 16];
        let n = stamped.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"hello");
        let read = Instant::now();
        let arrival = stamped
            .arrival()
            .expect("the kernel stamps loopback packets");
        let at = arrival.at(read);
        assert!(read - at >= Duration::from_millis(45), "{arrival:?}");
        assert!(at <= sent + Duration::from_millis(5), "{arrival:?}");
    }
}
