//! A simulated client's RESP connection to the node: sends pipelines of commands in one
//! write and reads replies with `tidemark::resp::ReplyParser`, each read bounded by a
//! virtual-time deadline.
//!
//! What can fail here: connect (refused while the node is down), reads and writes (reset
//! by a crash or by `reset_rate`, EOF), a reply that is not valid RESP (a protocol error,
//! reported as such), or the deadline passing (`ReadError::Timeout`).

use std::io;
use std::time::Duration;

use bytes::Bytes;
use tidemark::io::Stream;
use tidemark::resp::{encode_command, Frame, ReplyParser};

use crate::executor::{Executor, Owner};
use crate::net::{SimNet, SimStream};

/// Bytes asked of one socket read.
const READ_CHUNK_BYTES: usize = 4096;

/// Why no reply was read.
#[derive(Debug)]
pub enum ReadError {
    /// The connection failed (reset, EOF, broken pipe).
    Io(io::Error),
    /// The bytes received are not a valid RESP reply.
    Protocol(String),
    /// The deadline passed first.
    Timeout,
}

/// One client connection.
pub struct RespConn {
    exec: Executor,
    stream: SimStream,
    parser: ReplyParser,
}

impl RespConn {
    /// Connects `owner` to `addr` (`ip:port` of the node).
    pub async fn connect(
        exec: &Executor,
        net: &SimNet,
        owner: Owner,
        addr: &str,
    ) -> io::Result<RespConn> {
        let stream = net.connect(owner, addr).await?;
        Ok(RespConn {
            exec: exec.clone(),
            stream,
            parser: ReplyParser::new(),
        })
    }

    /// Sends every command of `commands` in one write (a pipeline). A write still blocked
    /// at virtual time `deadline` (the server stopped reading) fails with `TimedOut`.
    pub async fn send(&mut self, commands: &[Vec<Bytes>], deadline: Duration) -> io::Result<()> {
        let mut out = Vec::new();
        for args in commands {
            encode_command(args, &mut out);
        }
        let stream = &mut self.stream;
        let write = async move { Some(stream.write_all(out).await.0) };
        let timer = self.exec.sleep_until(deadline);
        let raced = futures_lite::future::or(write, async {
            timer.await;
            None
        })
        .await;
        raced.unwrap_or_else(|| {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the server did not read the request",
            ))
        })
    }

    /// The connection's id on the simulated network (for `SimNet::reset`).
    pub fn conn_id(&self) -> u64 {
        self.stream.conn_id()
    }

    /// The next reply, or why there is none by virtual time `deadline`.
    pub async fn read_reply(&mut self, deadline: Duration) -> Result<Frame, ReadError> {
        loop {
            match self.parser.next_frame() {
                Ok(Some(frame)) => return Ok(frame),
                Ok(None) => {}
                Err(e) => return Err(ReadError::Protocol(format!("{e:?}"))),
            }
            let stream = &mut self.stream;
            let read = async move {
                let (result, buf) = stream.read(Vec::with_capacity(READ_CHUNK_BYTES)).await;
                Some((result, buf))
            };
            let timer = self.exec.sleep_until(deadline);
            let raced = futures_lite::future::or(read, async {
                timer.await;
                None
            })
            .await;
            match raced {
                None => return Err(ReadError::Timeout),
                Some((Ok(0), _)) => {
                    return Err(ReadError::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed by the server",
                    )))
                }
                Some((Ok(_), buf)) => self.parser.feed(&buf),
                Some((Err(e), _)) => return Err(ReadError::Io(e)),
            }
        }
    }
}
