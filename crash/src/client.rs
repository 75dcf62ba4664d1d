//! A minimal blocking RESP2 client over std TCP for the crash checks: send commands
//! (pipelined), read replies. Only what the checks need: simple strings, errors, integers,
//! bulk strings, nulls and flat arrays.
//!
//! What can fail here: any socket error or malformed reply is an `Err` (during a workload
//! that means the server was killed; during verification it is a failure).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// One reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+…`
    Simple(String),
    /// `-…`
    Error(String),
    /// `:n`
    Integer(i64),
    /// `$…`
    Bulk(Vec<u8>),
    /// `$-1` / `*-1`
    Null,
    /// `*n` of scalar replies.
    Array(Vec<Reply>),
}

/// A connection.
pub struct Connection {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Connection {
    /// Connects to `127.0.0.1:port`.
    pub fn open(port: u16) -> std::io::Result<Connection> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        })
    }

    /// Sends commands in one write (a pipeline).
    pub fn send(&mut self, commands: &[Vec<Vec<u8>>]) -> std::io::Result<()> {
        let mut out = Vec::new();
        for args in commands {
            out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
            for arg in args {
                out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
                out.extend_from_slice(arg);
                out.extend_from_slice(b"\r\n");
            }
        }
        self.writer.write_all(&out)
    }

    /// Reads one reply.
    pub fn read(&mut self) -> std::io::Result<Reply> {
        let line = self.line()?;
        let (kind, rest) = line.split_at(1);
        let bad = || {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("bad reply line {line:?}"),
            )
        };
        match kind {
            "+" => Ok(Reply::Simple(rest.to_string())),
            "-" => Ok(Reply::Error(rest.to_string())),
            ":" => rest.parse().map(Reply::Integer).map_err(|_| bad()),
            "$" => self.bulk(rest.parse().map_err(|_| bad())?),
            "*" => {
                let n: i64 = rest.parse().map_err(|_| bad())?;
                if n < 0 {
                    return Ok(Reply::Null);
                }
                let mut items = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    let line = self.line()?;
                    let (kind, rest) = line.split_at(1);
                    items.push(match kind {
                        "$" => self.bulk(rest.parse().map_err(|_| bad())?)?,
                        ":" => Reply::Integer(rest.parse().map_err(|_| bad())?),
                        "+" => Reply::Simple(rest.to_string()),
                        _ => return Err(bad()),
                    });
                }
                Ok(Reply::Array(items))
            }
            _ => Err(bad()),
        }
    }

    /// Sends one command and reads its reply.
    pub fn call(&mut self, args: &[&[u8]]) -> std::io::Result<Reply> {
        self.send(&[args.iter().map(|a| a.to_vec()).collect()])?;
        self.read()
    }

    fn line(&mut self) -> std::io::Result<String> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "closed",
            ));
        }
        if line.len() < 3 || !line.ends_with("\r\n") {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "short line",
            ));
        }
        line.truncate(line.len() - 2);
        Ok(line)
    }

    fn bulk(&mut self, len: i64) -> std::io::Result<Reply> {
        if len < 0 {
            return Ok(Reply::Null);
        }
        let mut data = vec![0u8; len as usize + 2];
        self.reader.read_exact(&mut data)?;
        data.truncate(len as usize);
        Ok(Reply::Bulk(data))
    }
}

/// True if the server answers PING.
pub fn ping(port: u16) -> bool {
    Connection::open(port)
        .and_then(|mut c| c.call(&[b"PING"]))
        .is_ok_and(|r| r == Reply::Simple("PONG".to_string()))
}
